"""NCE (Tran et al., ICCV 2019): negative conditional entropy ``-H(Y | Z)`` of the target label
given the source model's hard label ``Z = argmax θ(x)``. 0 when Z determines Y.
"""

from __future__ import annotations

import numpy as np

from transferkit.transferability.base import scores
from transferkit.transferability.pseudo_source import gmm_posteriors


def nce_from_source_labels(source_labels: np.ndarray, labels: np.ndarray) -> float:
    n = len(labels)
    _, z = np.unique(source_labels, return_inverse=True)
    joint = np.zeros((int(labels.max()) + 1, int(z.max()) + 1))
    np.add.at(joint, (labels, z), 1.0 / n)
    pz = joint.sum(0, keepdims=True)
    nonzero = joint > 0
    return float(np.sum(joint[nonzero] * np.log((joint / pz)[nonzero])))


@scores.register("nce")
def nce(features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None = None) -> float:
    if source_probs is None:
        source_probs = gmm_posteriors(features, int(labels.max()) + 1)
    return nce_from_source_labels(np.asarray(source_probs).argmax(1), labels)
