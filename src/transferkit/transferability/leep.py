"""LEEP (Nguyen et al., ICML 2020): the average log-likelihood of the target labels under the
"expected empirical predictor" ``p(y|x) = Σ_z p(y|z) θ(x)_z``, where ``θ(x)`` is the source
model's posterior over its own labels and ``p(y|z)`` the empirical conditional of the
target label given the source label.
"""

from __future__ import annotations

import numpy as np

from transferkit.transferability.base import scores
from transferkit.transferability.pseudo_source import gmm_posteriors


def leep_from_posteriors(source_probs: np.ndarray, labels: np.ndarray) -> float:
    theta = np.asarray(source_probs, dtype=np.float64)
    n = len(labels)
    num_classes = int(labels.max()) + 1
    joint = np.zeros((num_classes, theta.shape[1]))
    for k in range(num_classes):
        joint[k] = theta[labels == k].sum(0) / n  # P(y, z)
    conditional = joint / np.clip(joint.sum(0, keepdims=True), 1e-12, None)  # P(y | z)
    eep = theta @ conditional.T  # (N, K)
    return float(np.mean(np.log(np.clip(eep[np.arange(n), labels], 1e-12, None))))


@scores.register("leep")
def leep(features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None = None) -> float:
    if source_probs is None:
        source_probs = gmm_posteriors(features, int(labels.max()) + 1)
    return leep_from_posteriors(source_probs, labels)
