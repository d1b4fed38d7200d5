"""Transferability scores: how well a pretrained model's features suit a labelled target set,
estimated from features alone, without training. Higher is better for every score here.

Each score is one file and one registry entry; all take ``features (N, D)``, integer
``labels (N,)`` and optionally ``source_probs (N, Z)``, the source model's posterior over its
own label set. Scores that need source labels (LEEP, NCE) fall back, when no source head
exists, to a Gaussian mixture fitted on the features (the N-LEEP recipe of Li et al., 2021).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from transferkit.errors import DataError
from transferkit.registry import Registry

ScoreFn = Callable[..., float]
scores: Registry[ScoreFn] = Registry("transferability score")


def check_inputs(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise DataError(f"Expected features (N, D) and labels (N,), got {features.shape} and {labels.shape}.")
    if not np.isfinite(features).all():
        raise DataError("Features contain NaN or inf; check the backbone's output (e.g. fp16 overflow).")
    classes = np.unique(labels)
    if len(classes) < 2:
        raise DataError(f"A transferability score needs at least 2 classes, got {len(classes)}.")
    # dense 0..K-1 labels whatever the input coding
    return features, np.searchsorted(classes, labels)


def score(name: str, features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None = None) -> float:
    """``name`` in ``scores`` (``logme``, ``leep``, ``nce``, ``hscore``) of features for labels."""
    fn = scores.get(name)
    features, labels = check_inputs(features, labels)
    return float(fn(features, labels, source_probs=source_probs))
