"""Small in-memory datasets and one-liners for engine tests."""

from __future__ import annotations

import re

import torch

from transferkit.api import make_data
from transferkit.data import TensorImageDataset
from transferkit.engine.config import TrainConfig

from ..conftest import make_tiny_backbone


def tiny_data(n_per_class: int = 8, classes: int = 3, size: int = 16, seed: int = 0, preset: str = "none"):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    images = torch.rand(len(labels), 3, size, size, generator=generator) * 0.4
    for c in range(classes):
        images[labels == c, c % 3] += 0.5
    train = TensorImageDataset(images, labels)
    val = TensorImageDataset(images[::2].clone(), labels[::2].clone())
    backbone = make_tiny_backbone()
    return backbone, make_data(train, val, [f"c{i}" for i in range(classes)], backbone.data_config, preset=preset)


def config(**kwargs) -> TrainConfig:
    base = {"epochs": 3, "batch_size": 8, "lr": 1e-2, "progress": False, "precision": "32-true", "accelerator": "cpu"}
    return TrainConfig(**{**base, **kwargs})


def quiet(*_args) -> None:
    pass


EPOCH_LINE = re.compile(r"\s*epoch\s+\d+/")  # the line the engine logs when an epoch ends


def dying_log(epoch_lines: int):
    """A ``log`` that interrupts the run at the ``epoch_lines``-th epoch line, as a kill would.

    The epoch line is written when the epoch ends, before its checkpoint, so the run folder then
    holds ``epoch_lines - 1`` finished epochs (the tests check that count).
    """
    seen = {"n": 0}

    def log(line: str) -> None:
        if EPOCH_LINE.match(line):
            seen["n"] += 1
            if seen["n"] == epoch_lines:
                raise KeyboardInterrupt("killed")

    return log
