"""Keypoint accuracy: PCK (percentage of correct keypoints) and OKS (COCO's object keypoint similarity).

Each ground-truth instance with visible keypoints is matched to the highest-scoring prediction of its
class whose box overlaps it at IoU ≥ 0.5 (a prediction is used once); an unmatched instance scores
0. PCK@α: the share of visible keypoints within α · max(box width, height) of the truth. OKS of an
instance: the mean over its visible keypoints of exp(-d² / (2 s² κ²)), s² its box area, κ the
per-keypoint constant (COCO's 2σ: 0.05–0.21 for people; 0.1 by default here).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _match(prediction: dict[str, Tensor], box: Tensor, label: int, used: set[int]) -> int | None:
    """The highest-scoring unused prediction of class ``label`` with box IoU ≥ 0.5 to ``box``."""
    from torchvision.ops import box_iou

    if not len(prediction["boxes"]):
        return None
    ious = box_iou(box[None], prediction["boxes"])[0]
    for j in prediction["scores"].argsort(descending=True).tolist():
        if j not in used and int(prediction["labels"][j]) == label and ious[j] >= 0.5:
            return j
    return None


def keypoint_metrics(
    predictions: list[dict[str, Tensor]], targets: list[dict[str, Tensor]], alpha: float = 0.1, kappa: float = 0.1
) -> dict[str, float]:
    """``{"pck": …, "oks": …}`` over the targets' instances with visible keypoints (see the module)."""
    hits = total = 0
    similarities: list[float] = []
    for prediction, target in zip(predictions, targets):
        used: set[int] = set()
        for box, label, points in zip(target["boxes"], target["labels"], target["keypoints"]):
            visible = points[:, 2] > 0
            if not visible.any():
                continue
            total += int(visible.sum())
            j = _match(prediction, box, int(label), used)
            if j is None:
                similarities.append(0.0)
                continue
            used.add(j)
            distance = (prediction["keypoints"][j, :, :2] - points[:, :2]).norm(dim=1)[visible]
            width, height = float(box[2] - box[0]), float(box[3] - box[1])
            hits += int((distance <= alpha * max(width, height)).sum())
            scale = 2 * width * height * kappa**2
            similarities.append(float(torch.exp(-(distance**2) / scale).mean()))
    if not total:
        return {"pck": math.nan, "oks": math.nan}
    return {"pck": hits / total, "oks": sum(similarities) / len(similarities)}
