"""H-score (Bao et al., ICIP 2019): ``tr(cov(f)^-1 cov(E[f | y]))``, the asymptotic error
exponent of a linear classifier on features ``f``. With ``shrinkage`` the feature
covariance is Ledoit-Wolf regularised (Ibrahim et al., ICLR 2023), which keeps the score
meaningful when features outnumber samples.
"""

from __future__ import annotations

import numpy as np

from transferkit.transferability.base import scores


def h_score(features: np.ndarray, labels: np.ndarray, shrinkage: bool = True) -> float:
    f = features - features.mean(0, keepdims=True)
    if shrinkage:
        from sklearn.covariance import LedoitWolf

        cov = LedoitWolf(assume_centered=True).fit(f).covariance_
    else:
        cov = f.T @ f / len(f)
    class_means = np.zeros_like(f)
    for k in np.unique(labels):
        class_means[labels == k] = f[labels == k].mean(0)
    between = class_means.T @ class_means / len(f)
    return float(np.trace(np.linalg.pinv(cov, rcond=1e-10, hermitian=True) @ between))


@scores.register("hscore")
def hscore(features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None = None) -> float:
    return h_score(features, labels)
