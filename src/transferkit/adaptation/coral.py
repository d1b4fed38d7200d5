"""Deep CORAL (Sun & Saenko, ECCV-W 2016): match second-order statistics,
``||C_s - C_t||_F^2 / (4 d^2)`` with ``C`` the feature covariance."""

from __future__ import annotations

from torch import Tensor

from transferkit.adaptation.base import AdaptationMethod, adaptation_methods


def covariance(x: Tensor) -> Tensor:
    x = x.float() - x.float().mean(0, keepdim=True)
    return x.T @ x / max(len(x) - 1, 1)


def coral_loss(f_s: Tensor, f_t: Tensor) -> Tensor:
    d = f_s.shape[1]
    return (covariance(f_s) - covariance(f_t)).pow(2).sum() / (4 * d * d)


@adaptation_methods.register("coral")
class DeepCORAL(AdaptationMethod):
    name = "coral"

    def forward(self, f_s: Tensor, f_t: Tensor, logits_s: Tensor, logits_t: Tensor, progress: float) -> Tensor:
        return coral_loss(f_s, f_t)
