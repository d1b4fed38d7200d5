"""LogME (You et al., ICML 2021): the log marginal evidence of a Bayesian linear model
from features to one-hot labels, maximised over its prior and noise precisions.

Per class ``k`` it fits ``y_k = F w + noise`` with ``w ~ N(0, 1/alpha)``, noise precision
``beta``; the fixed-point updates of MacKay (1992) find ``alpha``, ``beta``. The score is
the average over classes of the evidence per sample.
"""

from __future__ import annotations

import numpy as np

from transferkit.transferability.base import scores


def _class_evidence(y: np.ndarray, f: np.ndarray, v: np.ndarray, s: np.ndarray, max_iter: int = 11) -> float:
    n, d = f.shape
    eps = 1e-5
    alpha, beta = 1.0, 1.0
    projected = v.T @ (f.T @ y)  # F^T y in the eigenbasis of F^T F
    for _ in range(max_iter):
        lam = alpha / beta
        gamma = (s / (s + lam)).sum()  # effective number of parameters
        m = v @ (projected * beta / (alpha + beta * s))  # posterior mean of w
        alpha_de = (m * m).sum()
        beta_de = ((y - f @ m) ** 2).sum()
        alpha = gamma / (alpha_de + eps)
        beta = (n - gamma) / (beta_de + eps)
        if abs(alpha / beta - lam) / lam < 0.01:
            break
    evidence = (
        d / 2.0 * np.log(alpha)
        + n / 2.0 * np.log(beta)
        - 0.5 * np.sum(np.log(alpha + beta * s))
        - beta / 2.0 * beta_de
        - alpha / 2.0 * alpha_de
        - n / 2.0 * np.log(2 * np.pi)
    )
    return float(evidence / n)


@scores.register("logme")
def logme(features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None = None) -> float:
    f = features
    eigvals, v = np.linalg.eigh(f.T @ f)
    s = np.clip(eigvals, 0.0, None)
    return float(np.mean([_class_evidence((labels == k).astype(np.float64), f, v, s) for k in np.unique(labels)]))
