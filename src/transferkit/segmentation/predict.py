"""Masks for new images: class ids at each image's own size, and the pixels of every class."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from transferkit.data.images import load_image
from transferkit.data.transforms import eval_transform
from transferkit.segmentation.model import SegmentationModel


def predict_mask(model: SegmentationModel, image: torch.Tensor) -> np.ndarray:
    """(H, W) uint8 class ids of a (3, H, W) image in [0, 1], at its own size (nearest-neighbour upsampling)."""
    transform = eval_transform(model.data_config)
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model.eval()(transform(image).unsqueeze(0).to(device))
        logits = torch.nn.functional.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()


def predict_masks(model: SegmentationModel, files: Sequence[Path], out: str | Path) -> list[dict]:
    """``out/<stem>.png`` per file and ``out/pixels.csv`` (pixels per class per file), written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in files:
        mask = predict_mask(model, load_image(path))
        Image.fromarray(mask).save(out / f"{Path(path).stem}.png")
        counts = np.bincount(mask.ravel(), minlength=len(model.classes))
        rows.append({"path": str(path), **{name: int(c) for name, c in zip(model.classes, counts)}})
    tmp = out / ".pixels.csv.tmp"
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", *model.classes])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out / "pixels.csv")
    return rows
