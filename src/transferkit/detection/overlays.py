"""Report overlays for detection: truth (green) beside prediction (orange): boxes with class names and
scores, instance masks and keypoints where the model has them."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from transferkit.detection.model import DetectionModel


def _draw(picture: Tensor, found: dict[str, Tensor], names: list[str], colour: str) -> Tensor:
    from torchvision.utils import draw_bounding_boxes, draw_keypoints, draw_segmentation_masks

    if "masks" in found and len(found["masks"]):
        masks = found["masks"].reshape(-1, *picture.shape[-2:]) > 0.5
        picture = draw_segmentation_masks(picture, masks, alpha=0.4, colors=colour)
    if len(found["boxes"]):
        picture = draw_bounding_boxes(picture, found["boxes"], labels=names, colors=colour, width=1)
    if "keypoints" in found and len(found["keypoints"]):
        points = found["keypoints"][..., :2]
        visible = found["keypoints"][..., 2] > 0
        picture = draw_keypoints(picture, points, colors="red", radius=2, visibility=visible)
    return picture


def box_examples(model: DetectionModel, dataset: Dataset, count: int = 6, min_score: float = 0.5) -> list:
    """(H, 2W, 3) uint8 strips of the first ``count`` images: truth | predictions scoring at least ``min_score``."""
    model.eval()
    shown = []
    for index in range(min(count, len(dataset))):
        image, target = dataset[index]
        with torch.inference_mode():
            found = {k: v.cpu() for k, v in model([image.to(next(model.parameters()).device)])[0].items()}
        keep = found["scores"] >= min_score
        found = {k: v[keep] for k, v in found.items()}
        picture = (image.clamp(0, 1) * 255).to(torch.uint8)
        truth_names = [model.classes[i - 1] for i in target["labels"].tolist()]
        found_names = [f"{model.classes[i - 1]} {s:.2f}" for i, s in zip(found["labels"].tolist(), found["scores"])]
        panels = [_draw(picture, target, truth_names, "lime"), _draw(picture, found, found_names, "orange")]
        caption = f"image {index}: truth ({len(truth_names)}) | prediction ({len(found_names)} at ≥ {min_score})"
        shown.append((torch.cat(panels, dim=2).permute(1, 2, 0).numpy(), caption))
    return shown
