"""Zero-shot recognition: classes never seen in training, described by attributes (or text, CLIP)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from transferkit.registry import Registry


class ZeroShotMethod(ABC):
    """``fit`` on seen-class features with their classes' attribute rows; ``scores`` vs. any classes."""

    name: str = ""

    def _prepare(self, features: np.ndarray, fit: bool = False) -> np.ndarray:
        """Standardise with the seen-class statistics, then L2-normalise rows."""
        x = np.asarray(features, dtype=np.float64)
        if fit:
            self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        x = (x - self.mean) / self.std
        return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)

    @abstractmethod
    def fit(self, features: np.ndarray, labels: np.ndarray, seen_attributes: np.ndarray) -> ZeroShotMethod:
        """Learn from seen-class features, their labels and the seen classes' attribute rows."""

    @abstractmethod
    def scores(self, features: np.ndarray, attributes: np.ndarray) -> np.ndarray:
        """(N, Z) compatibility of each image with each class's attributes (higher: more likely)."""

    def predict(self, features: np.ndarray, attributes: np.ndarray) -> np.ndarray:
        return self.scores(features, attributes).argmax(1)


zeroshot_methods: Registry[type[ZeroShotMethod]] = Registry("zero-shot method")
