"""Detections for new images, in each image's own pixels, and object counts per class (crystal counting);
for Mask R-CNN also each instance's area in the image's pixels (crystal sizes), for Keypoint R-CNN its
keypoints (e.g. a needle's two tips: its length)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as F

from transferkit.data.images import load_image
from transferkit.detection.model import DetectionModel


def detect(model: DetectionModel, image: torch.Tensor, min_score: float = 0.5) -> list[tuple[str, float, list[float]]]:
    """(class, score, [x1, y1, x2, y2] (+ [area] for Mask R-CNN: mask pixels at 0.5, in the image's pixels;
    + [x, y] per keypoint for Keypoint R-CNN)) of every box scoring at least ``min_score`` in a (3, H, W) image
    in [0, 1]."""
    size = model.data_config.input_size
    height, width = image.shape[-2:]
    resized = F.resize(image, [size, size], antialias=True)
    with torch.inference_mode():
        found = model.eval()([resized.to(next(model.parameters()).device)])[0]
    scale = torch.tensor([width / size, height / size, width / size, height / size])
    areas = (found["masks"] > 0.5).flatten(1).sum(1) * (width / size) * (height / size) if "masks" in found else None
    rows = []
    for i, (box, label, score) in enumerate(zip(found["boxes"].cpu() * scale, found["labels"].tolist(),
                                                found["scores"].tolist())):  # fmt: skip
        if score >= min_score:
            values = [round(float(v), 1) for v in box] + ([round(float(areas[i]), 1)] if areas is not None else [])
            if "keypoints" in found:
                points = found["keypoints"][i, :, :2].cpu() * scale[:2]
                values += [round(float(v), 1) for v in points.reshape(-1)]
            rows.append((model.classes[label - 1], float(score), values))
    return rows


def _atomic_csv(path: Path, header: list[str], rows: list[list]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


def predict_files(
    model: DetectionModel, files: Sequence[Path], out: str | Path, min_score: float = 0.5
) -> dict[str, dict[str, int]]:
    """``out`` (one row per box) and ``<out>_counts.csv`` (objects per class per image); returns the counts."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    boxes, counts = [], {}
    for path in files:
        found = detect(model, load_image(path), min_score)
        counts[str(path)] = {name: sum(1 for c, _, _ in found if c == name) for name in model.classes}
        boxes += [[str(path), name, round(score, 4), *box] for name, score, box in found]
    extra = ["area_px"] if model.with_masks else []
    extra += [f"{name}_{axis}" for name in model.keypoint_names for axis in "xy"]
    _atomic_csv(out, ["path", "class", "score", "x1", "y1", "x2", "y2", *extra], boxes)
    count_rows = [[path, *per_class.values(), sum(per_class.values())] for path, per_class in counts.items()]
    _atomic_csv(out.with_name(out.stem + "_counts.csv"), ["path", *model.classes, "total"], count_rows)
    return counts
