"""Fit and score an anomaly detector on an MVTec-style folder: the whole workflow in two calls."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferkit.anomaly.data import AnomalyImages, read_anomaly_folder
from transferkit.anomaly.metrics import aupro, image_auroc, pixel_auroc
from transferkit.anomaly.model import BACKBONE, IMAGE_SIZE, AnomalyModel, build_anomaly_model


def evaluate_anomaly(model: AnomalyModel, dataset: AnomalyImages, batch_size: int = 32) -> dict[str, Any]:
    """Image AUROC, pixel AUROC and AUPRO (NaN without masks), scores and heatmaps of ``dataset``'s images."""
    import torch

    scores, maps = model.score(dataset, batch_size)
    labels = [s.label for s in dataset.samples]
    has_masks = any(s.mask for s in dataset.samples)
    masks = torch.stack([dataset.mask(i) for i in range(len(dataset))]) if has_masks else None
    pixel = pixel_auroc(maps, masks) if masks is not None else math.nan
    pro = aupro(maps, masks) if masks is not None else math.nan
    return {"image_auroc": image_auroc(scores, labels), "pixel_auroc": pixel, "aupro": pro, "scores": scores,
            "maps": maps}  # fmt: skip


@dataclass
class AnomalyRun:
    model: AnomalyModel
    metrics: dict[str, Any]  # image_auroc, pixel_auroc, aupro (test split), scores, maps
    test: AnomalyImages | None


def fit_anomaly(
    root: str | Path,
    backbone: str = BACKBONE,
    method: str = "patchcore",
    weights: str | Path | None = "imagenet",
    image_size: int = IMAGE_SIZE,
    held_out: float = 0.2,
    seed: int = 0,
    strides: tuple[int, ...] = (),
    **options: Any,
) -> AnomalyRun:
    """Learn ``root``'s train/good images (a ``held_out`` fraction of them only sets the threshold), then
    score its test/ images when there are any. ``strides``: the stages read (the method's own when empty)."""
    data = read_anomaly_folder(root)
    model = build_anomaly_model(backbone, method, weights, image_size, strides, **options)
    normal = data.train[:]
    random.Random(seed).shuffle(normal)
    cut = round(len(normal) * held_out) if len(normal) >= 5 else 0
    dc = model.features.data_config
    fit_on, threshold_on = AnomalyImages(normal[cut:], dc, image_size), AnomalyImages(normal[:cut], dc, image_size)
    model.fit(fit_on, threshold_on)
    test = AnomalyImages(data.test, dc, image_size) if data.test else None
    return AnomalyRun(model, evaluate_anomaly(model, test) if test else {}, test)
