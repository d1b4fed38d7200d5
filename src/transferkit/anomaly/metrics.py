"""Image AUROC (is the image anomalous?) and pixel AUROC (which pixels?) of anomaly scores (scikit-learn)."""

from __future__ import annotations

import math

import numpy as np
from torch import Tensor


def image_auroc(scores: Tensor, labels: Tensor | list[int]) -> float:
    """AUROC of image scores against labels (1 anomalous); NaN when only one kind of image is present."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels)
    if len(set(labels.tolist())) < 2:
        return math.nan
    return float(roc_auc_score(labels, np.asarray(scores)))


def pixel_auroc(maps: Tensor, masks: Tensor) -> float:
    """AUROC of every pixel's score against the defect masks, pooled over images (NaN without defect pixels)."""
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(masks).reshape(-1) > 0.5
    if truth.all() or not truth.any():
        return math.nan
    return float(roc_auc_score(truth, np.asarray(maps, dtype=np.float32).reshape(-1)))
