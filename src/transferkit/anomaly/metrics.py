"""Image AUROC (is the image anomalous?), pixel AUROC (which pixels?) and AUPRO (how much of each defect?)."""

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


def _regions(truth: np.ndarray) -> tuple[np.ndarray, int]:
    """Each defect's connected pixels (8-connectivity) numbered 1..n across all images; 0 for normal pixels."""
    from scipy import ndimage

    regions, count = np.zeros(truth.shape, dtype=np.int64), 0
    for i, mask in enumerate(truth):
        labels, k = ndimage.label(mask, structure=np.ones((3, 3)))
        regions[i] = np.where(labels > 0, labels + count, 0)
        count += k
    return regions, count


def aupro(maps: Tensor, masks: Tensor, fpr_limit: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``fpr_limit`` false-positive rate, divided by it.

    Bergmann et al. (MVTec AD, IJCV 2021): at each threshold, PRO is the mean over defects (connected
    regions of the masks, each counted once whatever its size) of the share of its pixels above the
    threshold, and FPR the share of normal pixels above it. Exact over every threshold (ties grouped).
    NaN without defect or without normal pixels.
    """
    scores = np.asarray(maps, dtype=np.float64).reshape(len(maps), *np.asarray(maps).shape[-2:])
    regions, count = _regions(np.asarray(masks).reshape(scores.shape) > 0.5)
    flat_regions = regions.reshape(-1)
    if count == 0 or (flat_regions > 0).all():
        return math.nan
    order = np.argsort(-scores.reshape(-1), kind="stable")
    ranked, owner = scores.reshape(-1)[order], flat_regions[order]
    sizes = np.bincount(flat_regions, minlength=count + 1)
    fpr = np.cumsum(owner == 0) / np.count_nonzero(flat_regions == 0)
    pro = np.cumsum(np.where(owner > 0, 1.0 / (sizes[owner] * count), 0.0))
    last = np.r_[ranked[1:] != ranked[:-1], True]  # a threshold takes every pixel of its tie group
    fpr, pro = np.r_[0.0, fpr[last]], np.r_[0.0, pro[last]]
    k = int(np.searchsorted(fpr, fpr_limit, side="right"))
    if k < len(fpr):  # cut the curve at the limit, interpolating its last segment
        end = np.interp(fpr_limit, fpr[k - 1 : k + 1], pro[k - 1 : k + 1])
        fpr, pro = np.r_[fpr[:k], fpr_limit], np.r_[pro[:k], end]
    return float(np.trapezoid(pro, fpr) / fpr_limit)
