"""H-score (Bao et al., ICIP 2019): ``tr(cov(f)^-1 cov(E[f | y]))``, the asymptotic error
exponent of a linear classifier on features ``f``. With ``shrinkage`` it is the regularised
H-score of Ibrahim et al. (2022), ``tr(cov_α(f)^-1 (1 - α) cov(E[f | y]))``: the feature
covariance is Ledoit-Wolf shrunk with coefficient α and the between-class covariance is
scaled by the same ``1 - α``, which keeps the score comparable between backbones when
features outnumber samples (without it, wide features on few samples score too high).
https://openreview.net/pdf?id=iz_Wwmfquno — covariances as in the reference code (TLlib):
Ledoit-Wolf's (divided by N) for ``f``, ``np.cov`` (divided by N - 1) for the class means.
"""

from __future__ import annotations

import numpy as np

from transferkit.transferability.base import scores


@scores.register("hscore")
def hscore(
    features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None = None, shrinkage: bool = True
) -> float:
    """The (regularised, with ``shrinkage``) H-score of ``features`` for ``labels``; ``source_probs`` unused."""
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(0, keepdims=True)
    n = len(f)
    class_means = np.zeros_like(f)
    for k in np.unique(labels):
        class_means[labels == k] = f[labels == k].mean(0)
    between = class_means.T @ class_means / (n - 1)  # np.cov of the class means (they average to zero)
    if shrinkage:
        from sklearn.covariance import LedoitWolf

        estimator = LedoitWolf(assume_centered=True).fit(f)
        cov, between = estimator.covariance_, (1.0 - estimator.shrinkage_) * between
    else:
        cov = f.T @ f / (n - 1)
    return float(np.trace(np.linalg.pinv(cov, rcond=1e-10, hermitian=True) @ between))
