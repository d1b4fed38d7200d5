"""Anomaly data in MVTec AD's layout, which users of defect detection already have:

``DATA/train/good/*`` normal images (the only ones the model learns from); ``DATA/test/good/*`` and
``DATA/test/<defect>/*`` images to score; ``DATA/ground_truth/<defect>/<stem>_mask.png`` the defect's
pixels (optional: without masks only image-level AUROC is computed). Any other folder under
``train/`` holds images that are not normal: they are left out, with a warning that counts them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from transferkit.backbones.base import DataConfig
from transferkit.data.images import IMAGE_SUFFIXES, load_image
from transferkit.data.transforms import eval_transform
from transferkit.errors import DataError


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass
class Sample:
    path: Path
    label: int  # 0 normal, 1 anomalous
    mask: Path | None = None


class AnomalyImages(Dataset):
    """Samples → (normalised (3, S, S) image, label, (S, S) float mask: 1 on defect pixels; zeros if none)."""

    def __init__(self, samples: list[Sample], data_config: DataConfig, size: int) -> None:
        self.samples, self.size = samples, size
        self.transform = eval_transform(data_config, size)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        return [s.label for s in self.samples]

    def mask(self, index: int) -> Tensor:
        """(S, S) float: 1 on the defect's pixels (zeros without a mask), read without decoding the image."""
        sample = self.samples[index]
        if sample.mask is None:
            return torch.zeros(self.size, self.size)
        pixels = Image.open(sample.mask).convert("L").resize((self.size, self.size), Image.NEAREST)
        return torch.from_numpy((np.asarray(pixels) > 0).astype(np.float32))

    def __getitem__(self, index: int) -> tuple[Tensor, int, Tensor]:
        sample = self.samples[index]
        return self.transform(load_image(sample.path)), sample.label, self.mask(index)


@dataclass
class AnomalyData:
    train: list[Sample]
    test: list[Sample]
    has_masks: bool


def read_anomaly_folder(root: str | Path) -> AnomalyData:
    """The normal training images and the test samples (with their masks) of an MVTec-style folder."""
    root = Path(root)
    good = root / "train" / "good"
    if not good.is_dir() or not _images(good):
        raise DataError(f"{root} needs normal images in train/good/ (MVTec AD layout); found none there.")
    others = {p.name: len(_images(p)) for p in (root / "train").iterdir() if p.is_dir() and p.name != "good"}
    if any(others.values()):
        listed = ", ".join(f"{n} in train/{name}/" for name, n in others.items() if n)
        warnings.warn(f"{root}: {listed} — not normal, so not learned from; put defective images under test/.",
                      stacklevel=2)  # fmt: skip
    test = []
    for folder in sorted(p for p in (root / "test").iterdir() if p.is_dir()) if (root / "test").is_dir() else []:
        label = 0 if folder.name == "good" else 1
        for path in _images(folder):
            mask = root / "ground_truth" / folder.name / f"{path.stem}_mask.png"
            test.append(Sample(path, label, mask if label and mask.is_file() else None))
    has_masks = any(s.mask is not None for s in test)
    missing = [s.path.name for s in test if s.label and s.mask is None]
    if has_masks and missing:
        raise DataError(
            f"{root}: {len(missing)} defective test images have no ground_truth/<defect>/<stem>_mask.png "
            f"(e.g. {missing[0]}); give every one a mask, or none (image-level scores only)."
        )
    return AnomalyData([Sample(p, 0) for p in _images(good)], test, has_masks)
