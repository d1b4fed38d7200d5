"""Tiny CPU fixtures: a 3-stage conv net and generated image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from transferkit.backbones import DataConfig, ModelBackbone
from transferkit.backbones._grouping import find_layer_groups


def tiny_convnet(width: int = 8, batchnorm: bool = True) -> nn.Module:
    def stage(cin: int, cout: int) -> nn.Sequential:
        norm = nn.BatchNorm2d(cout) if batchnorm else nn.Identity()
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), norm, nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(
        stage(3, width),
        stage(width, width * 2),
        stage(width * 2, width * 4),
        stage(width * 4, width * 4),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def make_tiny_backbone(width: int = 8, batchnorm: bool = True) -> ModelBackbone:
    net = tiny_convnet(width, batchnorm)
    return ModelBackbone("tiny", net, width * 4, DataConfig(16, (0.5,) * 3, (0.25,) * 3), find_layer_groups(net))


@pytest.fixture
def tiny_backbone() -> ModelBackbone:
    return make_tiny_backbone()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def write_class_images(
    root: Path, classes: tuple[str, ...] = ("a", "b", "c"), per_class: int = 8, size: int = 16, seed: int = 0
) -> Path:
    """Separable classes: each class brightens one colour channel."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = (rng.random((size, size, 3)) * 80).astype(np.uint8)
            pixels[..., c % 3] += 150
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_class_images(tmp_path / "data")


@pytest.fixture
def train_val_folder(tmp_path: Path) -> Path:
    write_class_images(tmp_path / "tv" / "train", per_class=8, seed=1)
    write_class_images(tmp_path / "tv" / "val", per_class=3, seed=2)
    return tmp_path / "tv"
