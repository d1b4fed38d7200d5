"""Report overlays for segmentation: each validation image beside its true and its predicted mask."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from transferkit.segmentation.model import SegmentationModel


def palette(count: int) -> list[tuple[int, int, int]]:
    """A distinct colour per class (matplotlib's tab20); class 0 is drawn too."""
    from matplotlib import colormaps

    colours = colormaps["tab20"].colors
    return [tuple(int(255 * c) for c in colours[i % len(colours)]) for i in range(count)]


def mask_examples(model: SegmentationModel, dataset: Dataset, count: int = 6) -> list[tuple[np.ndarray, str]]:
    """(H, 3W, 3) uint8 strips of the first ``count`` images of ``dataset``: image | truth | prediction, the
    masks blended in."""
    from torchvision.utils import draw_segmentation_masks

    from transferkit.data.transforms import denormalize

    dc, colours = model.data_config, palette(len(model.classes))
    model.eval()
    shown = []
    for index in range(min(count, len(dataset))):
        image, mask = dataset[index]
        with torch.inference_mode():
            pred = model(image[None].to(next(model.parameters()).device)).argmax(1)[0].cpu()
        picture = (denormalize(image, dc.mean, dc.std) * 255).to(torch.uint8)
        panels = [picture]
        for ids in (mask, pred):
            layers = torch.stack([ids == k for k in range(len(model.classes))])
            panels.append(draw_segmentation_masks(picture, layers, alpha=0.55, colors=colours))
        shown.append((torch.cat(panels, dim=2).permute(1, 2, 0).numpy(), f"image {index}: image | truth | prediction"))
    return shown


def per_class_table(metrics: dict, classes: list[str]) -> tuple[list[str], list[list]] | None:
    """(header, rows) of per-class IoU and Dice from :func:`segmentation_metrics`' ``iou``/``dice_per_class``."""
    if "iou" not in metrics or "dice_per_class" not in metrics:
        return None
    rows = [[name, float(i), float(d)] for name, i, d in zip(classes, metrics["iou"], metrics["dice_per_class"])]
    return ["class", "IoU", "Dice"], rows
