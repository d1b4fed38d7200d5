"""Gradient reversal (Ganin & Lempitsky, ICML 2015): identity forward, ``-coeff ×`` gradient backward."""

from __future__ import annotations

import math

import torch
from torch import Tensor


class _GradientReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, coeff: float) -> Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return -ctx.coeff * grad, None


def reverse_gradient(x: Tensor, coeff: float = 1.0) -> Tensor:
    return _GradientReverse.apply(x, coeff)


def grl_coefficient(progress: float, gamma: float = 10.0) -> float:
    """DANN's warm-up ``2 / (1 + exp(-gamma p)) - 1``: 0 at the start, → 1 at the end."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0
