"""Patch features of a backbone's mid-level stages: what PatchCore and PaDiM compare.

The stages come from timm's ``features_only`` copy of the backbone's architecture filled with the
backbone's own (offline) weights by name, as the detection pyramid does; they stay frozen in eval
mode. They are asked for by stride (4, 8, 16 px…), which names the same depth of detail on every
architecture, where timm's stage indices do not (ConvNeXt's first stage is stride 4, ResNet's stride 2).
Each stage's map is averaged over its 3×3 neighbourhood (PatchCore's local aggregation: a patch sees a
little context), upsampled to the first stage's size and concatenated over channels.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transferkit.backbones.base import ModelBackbone
from transferkit.backbones.encoder import copy_weights, timm_name
from transferkit.errors import ConfigError


@functools.cache
def _reductions(name: str) -> tuple[int, ...]:
    """The stride of each timm ``features_only`` stage of model ``name`` (built once per name)."""
    import timm

    return tuple(timm.create_model(name, pretrained=False, features_only=True).feature_info.reduction())


def strides_of(name: str, indices: tuple[int, ...]) -> tuple[int, ...]:
    """The strides of model ``name``'s timm ``features_only`` stages ``indices``."""
    reductions = _reductions(name)
    return tuple(reductions[i] for i in indices)


def stage_indices(name: str, strides: tuple[int, ...]) -> tuple[int, ...]:
    """timm ``features_only`` indices of the stages of model ``name`` at ``strides`` (the deepest stage of
    each stride); a ConfigError naming the strides the model has."""
    reductions = _reductions(name)
    missing = [s for s in strides if s not in reductions]
    if missing or not strides:
        raise ConfigError(
            f"{name} has feature stages at strides {sorted(set(reductions))}, not {list(strides) or 'none'}; "
            "pick strides from those (e.g. 4,8 for fine defects, 8,16 for larger ones)."
        )
    return tuple(len(reductions) - 1 - reductions[::-1].index(s) for s in strides)


class PatchFeatures(nn.Module):
    """``forward(images)`` → (N, C, H, W) patch embeddings of the stages at ``strides`` (in pixels)."""

    def __init__(self, source: ModelBackbone, strides: tuple[int, ...] = (8, 16), smooth: bool = True) -> None:
        import timm

        super().__init__()
        indices = stage_indices(timm_name(source), tuple(strides))
        body = timm.create_model(timm_name(source), pretrained=False, features_only=True, out_indices=indices)
        copy_weights(source, body)
        self.body = body.eval().requires_grad_(False)
        self.strides, self.smooth = tuple(strides), smooth
        self.data_config = source.data_config

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
