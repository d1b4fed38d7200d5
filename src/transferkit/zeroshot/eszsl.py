"""ESZSL (Romera-Paredes & Torr, ICML 2015): a bilinear compatibility ``x^T V s`` between
features ``x`` and class attributes ``s``, with the closed form
``V = (X Xᵀ + γ I)⁻¹ X Y Sᵀ (S Sᵀ + λ I)⁻¹`` learned on seen classes; an unseen image goes
to the unseen class whose attributes are most compatible."""

from __future__ import annotations

import numpy as np

from transferkit.zeroshot.base import ZeroShotMethod, zeroshot_methods


@zeroshot_methods.register("eszsl")
class ESZSL(ZeroShotMethod):
    name = "eszsl"

    def __init__(self, gamma: float = 1.0, lam: float = 1.0) -> None:
        self.gamma, self.lam = gamma, lam

    def fit(self, features: np.ndarray, labels: np.ndarray, seen_attributes: np.ndarray) -> ESZSL:
        x = self._prepare(features, fit=True).T  # (D, N)
        s = seen_attributes.T.astype(np.float64)  # (A, Z)
        y = -np.ones((x.shape[1], s.shape[1]))
        y[np.arange(len(labels)), labels] = 1.0
        left = np.linalg.solve(x @ x.T + self.gamma * np.eye(x.shape[0]), x @ y @ s.T)
        self.v = np.linalg.solve((s @ s.T + self.lam * np.eye(s.shape[0])).T, left.T).T
        return self

    def scores(self, features: np.ndarray, attributes: np.ndarray) -> np.ndarray:
        return self._prepare(features) @ self.v @ attributes.T.astype(np.float64)
