"""Classical image features as parameter-free backbones: what a user tries before deep transfer.

- ``pixels``: the image resized to 32×32, its raw values in [0, 1] as one vector.
- ``hog``: Dalal & Triggs' histograms of oriented gradients (scikit-image) on the image resized
  to 64×64: 8×8-pixel cells, 2×2-cell blocks, 9 orientations, L2-Hys — the standard setting.

As backbones they plug into everything that takes one (a head on top, the feature cache,
``best.pt`` checkpoints, ``predict``/``serve``); with an RBF SVM head they are the baselines
``sklearn-pixels-svm`` and ``sklearn-hog-svm``. They have no layer groups: nothing to fine-tune.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from transferkit.backbones.base import DataConfig, ModelBackbone
from transferkit.errors import ConfigError

RAW = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # inputs stay in [0, 1]


class PixelFeatures(nn.Module):
    """(N, 3, S, S) images → (N, 3·S·S) raw values."""

    def forward(self, images: Tensor) -> Tensor:
        return images.float().flatten(1)


class HogFeatures(nn.Module):
    """(N, 3, S, S) images in [0, 1] → (N, D) HOG descriptors (scikit-image, gradients over colour channels).

    Runs on the CPU with NumPy: not differentiable, not exportable to ONNX.
    """

    def __init__(self, orientations: int = 9, cell: int = 8, block: int = 2) -> None:
        super().__init__()
        self.orientations, self.cell, self.block = orientations, cell, block

    def width(self, size: int) -> int:
        blocks = size // self.cell - self.block + 1
        if blocks < 1:
            raise ConfigError(f"HOG needs images of at least {self.cell * self.block} px, got {size}.")
        return blocks * blocks * self.block * self.block * self.orientations

    def forward(self, images: Tensor) -> Tensor:
        from skimage.feature import hog

        array = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        rows = [
            hog(
                image,
                orientations=self.orientations,
                pixels_per_cell=(self.cell, self.cell),
                cells_per_block=(self.block, self.block),
                block_norm="L2-Hys",
                channel_axis=-1,
            )
            for image in array
        ]
        return torch.from_numpy(np.stack(rows).astype(np.float32)).to(images.device)


CLASSICAL = {"pixels": 32, "hog": 64}  # name → input size


def create_classical_backbone(arch: str, weights: str | Path | None = None, **kwargs: object) -> ModelBackbone:
    """``"pixels"`` or ``"hog"`` as a backbone (no parameters, no layer groups)."""
    if weights not in (None, "imagenet"):
        raise ConfigError(f"The classical feature extractor {arch!r} has no weights to load; got weights={weights!r}.")
    size = int(kwargs.pop("image_size", CLASSICAL[arch]))  # type: ignore[call-overload]
    if arch == "pixels":
        model: nn.Module = PixelFeatures()
        width = 3 * size * size
    else:
        model = HogFeatures(**kwargs)  # type: ignore[arg-type]
        width = model.width(size)
    return ModelBackbone(f"classical:{arch}", model, width, DataConfig(size, *RAW, interpolation="bilinear"), [])
