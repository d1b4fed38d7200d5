"""Linear CKA (Kornblith et al., ICML 2019): similarity of two representations of the same
examples, invariant to orthogonal transforms and isotropic scaling; 1 for identical ones.
Used to see which layers fine-tuning changed (compare pretrained vs. fine-tuned layer by layer)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def linear_cka(x: Tensor, y: Tensor) -> float:
    """CKA of (N, D1) and (N, D2) feature matrices."""
    x = x.double().flatten(1)
    y = y.double().flatten(1)
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    cross = (y.T @ x).norm() ** 2
    return float(cross / ((x.T @ x).norm() * (y.T @ y).norm()).clamp_min(1e-12))


def layer_outputs(model: nn.Module, layers: list[str], images: Tensor) -> dict[str, Tensor]:
    """Pooled outputs of each named module for ``images`` (maps averaged over space, tokens over tokens)."""
    from transferkit.inference import features_at

    return {name: features_at(model, images, name) for name in layers}


def cka_by_layer(before: nn.Module, after: nn.Module, layers: list[str], images: Tensor) -> dict[str, float]:
    """CKA between two backbones' outputs at the same layers (e.g. pretrained vs. fine-tuned).

    ``layers``: module paths inside the backbones' networks, e.g. from ``group_output_layers``.
    """
    with torch.no_grad():
        a, b = layer_outputs(before.eval(), layers, images), layer_outputs(after.eval(), layers, images)
    return {name: linear_cka(a[name], b[name]) for name in layers}
