"""Several trained models as one: class probabilities averaged (optionally weighted).

Members may expect different input sizes and normalisations (a HOG+SVM at 64 px in [0, 1],
a network at 224 px with ImageNet statistics). The ensemble takes images in [0, 1] at the
largest member's size and gives each member its own resize and normalisation, so it is used
exactly like a single model: ``predict``, ``serve``, ``evaluate``, saved in ``best.pt``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.backbones import DataConfig
from transferkit.engine.checkpoint import atomic_save
from transferkit.errors import ConfigError

RAW_MEAN, RAW_STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


class EnsembleModel(nn.Module):
    """``log Σ_m w_m · softmax(member_m(prepare_m(images)))``; ``softmax`` of the output is the average.

    Args:
        members: Trained models with the same classes, each with ``data_config`` and ``spec()``.
        weights: Non-negative weights (default: equal); normalised to sum to one.

    Shape:
        images: (N, 3, S, S) in [0, 1], S = the largest member input size. Returns (N, classes).
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if len(members) < 2:
            raise ConfigError(f"An ensemble needs at least 2 members, got {len(members)}.")
        classes = [list(m.classes) for m in members]
        if any(c != classes[0] for c in classes):
            raise ConfigError(f"Ensemble members must predict the same classes in the same order, got {classes}.")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ConfigError(f"Ensemble weights must be {len(members)} non-negative numbers, got {weights}.")
        self.members = nn.ModuleList(members)
        self.weights = [w / sum(weights) for w in weights]
        self.classes = classes[0]
        largest = max(members, key=lambda m: m.data_config.input_size)
        self.data_config = DataConfig(
            largest.data_config.input_size, RAW_MEAN, RAW_STD, largest.data_config.interpolation
        )
        self.tta = "none"  # each member applies its own

    def prepare(self, images: Tensor, config: DataConfig) -> Tensor:
        """Resize [0, 1] images to a member's input size and normalise them with its statistics."""
        size = config.input_size
        if images.shape[-1] != size or images.shape[-2] != size:
            mode = "bicubic" if config.interpolation == "bicubic" else "bilinear"
            images = F.interpolate(images, size=(size, size), mode=mode, antialias=True, align_corners=False)
        mean = torch.tensor(config.mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        std = torch.tensor(config.std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        return (images - mean) / std

    def forward(self, images: Tensor) -> Tensor:
        probs = sum(
            w * m(self.prepare(images, m.data_config)).float().softmax(1) for w, m in zip(self.weights, self.members)
        )
        return probs.clamp_min(1e-12).log()

    def spec(self) -> dict[str, Any]:
        dc = self.data_config
        return {
            "kind": "ensemble",
            "members": [m.spec() for m in self.members],
            "weights": list(self.weights),
            "classes": self.classes,
            "backbone": " + ".join(m.spec().get("backbone", "?") for m in self.members),
            "data_config": {
                "input_size": dc.input_size,
                "mean": list(dc.mean),
                "std": list(dc.std),
                "interpolation": dc.interpolation,
            },
        }

    def save(self, path: str | Path) -> None:
        atomic_save({"spec": self.spec(), "state_dict": self.state_dict()}, path)
