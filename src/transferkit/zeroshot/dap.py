"""DAP (Lampert et al., CVPR 2009 / TPAMI 2014): one probabilistic classifier per binary
attribute, trained on seen classes; an unseen class ``z`` scores
``Σ_m log p(a_m = a_m^z | x) − log p(a_m = a_m^z)`` (attribute priors from the seen classes)."""

from __future__ import annotations

import numpy as np

from transferkit.errors import DataError
from transferkit.zeroshot.base import ZeroShotMethod, zeroshot_methods


@zeroshot_methods.register("dap")
class DAP(ZeroShotMethod):
    name = "dap"

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, features: np.ndarray, labels: np.ndarray, seen_attributes: np.ndarray) -> DAP:
        from sklearn.linear_model import LogisticRegression

        binary = seen_attributes > 0.5
        x = self._prepare(features, fit=True)
        per_image = binary[labels]  # (N, A) attribute targets of each image
        self.models, self.constant = [], []
        for m in range(per_image.shape[1]):
            target = per_image[:, m]
            if target.all() or not target.any():
                self.models.append(None)  # constant over seen classes: no evidence either way
                self.constant.append(float(target.mean()))
            else:
                self.models.append(LogisticRegression(C=self.C, max_iter=2000).fit(x, target))
                self.constant.append(float("nan"))
        self.prior = np.clip(per_image.mean(0), 0.05, 0.95)
        if all(model is None for model in self.models):
            raise DataError("No attribute varies across the seen classes; DAP has nothing to learn.")
        return self

    def scores(self, features: np.ndarray, attributes: np.ndarray) -> np.ndarray:
        x = self._prepare(features)
        p = np.stack(
            [model.predict_proba(x)[:, 1] if model is not None else np.full(len(x), 0.5) for model in self.models],
            axis=1,
        )
        p = np.clip(p, 1e-4, 1 - 1e-4)
        a = attributes > 0.5  # (Z, A)
        log_p = np.log(p) @ a.T + np.log(1 - p) @ (~a).T  # (N, Z)
        log_prior = np.log(self.prior) @ a.T + np.log(1 - self.prior) @ (~a).T  # (Z,)
        return log_p - log_prior
