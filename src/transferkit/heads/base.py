"""Heads map pooled backbone features to class logits."""

from __future__ import annotations

from typing import Protocol

from torch import Tensor, nn

from transferkit.registry import Registry


class Head(Protocol):
    in_features: int
    num_classes: int

    def __call__(self, features: Tensor) -> Tensor: ...

    def reset(self, num_classes: int) -> None: ...


heads: Registry[type[nn.Module]] = Registry("head")


def create_head(name: str, in_features: int, num_classes: int, **kwargs: float | int) -> nn.Module:
    """A head from the registry, e.g. ``create_head("mlp", 512, 5, hidden=256, dropout=0.2)``."""
    return heads.get(name)(in_features, num_classes, **kwargs)
