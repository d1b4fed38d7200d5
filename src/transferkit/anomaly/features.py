"""Patch features of a backbone's mid-level stages: what PatchCore and PaDiM compare.

The stages come from timm's ``features_only`` copy of the backbone's architecture filled with the
backbone's own (offline) weights by name, as the detection pyramid does; they stay frozen in eval
mode. Each stage's map is averaged over its 3×3 neighbourhood (PatchCore's local aggregation: a
patch sees a little context), upsampled to the first stage's size and concatenated over channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transferkit.backbones.base import ModelBackbone
from transferkit.backbones.encoder import copy_weights, timm_name


class PatchFeatures(nn.Module):
    """``forward(images)`` → (N, C, H, W) patch embeddings of the stages at timm feature ``indices``."""

    def __init__(self, source: ModelBackbone, indices: tuple[int, ...] = (2, 3), smooth: bool = True) -> None:
        import timm

        super().__init__()
        body = timm.create_model(timm_name(source), pretrained=False, features_only=True, out_indices=indices)
        copy_weights(source, body)
        self.body = body.eval().requires_grad_(False)
        self.indices, self.smooth = tuple(indices), smooth
        self.data_config = source.data_config
        self.stride = body.feature_info.reduction()[0]

    def train(self, mode: bool = True) -> PatchFeatures:
        return super().train(False)  # always eval: BatchNorm statistics are the backbone's

    def forward(self, images: Tensor) -> Tensor:
        with torch.inference_mode():
            maps = self.body(images)
            if self.smooth:
                maps = [F.avg_pool2d(m, 3, stride=1, padding=1) for m in maps]
            size = maps[0].shape[-2:]
            maps = [m if m.shape[-2:] == size else F.interpolate(m, size=size, mode="bilinear") for m in maps]
            return torch.cat(maps, dim=1).float()
