"""DANN (Ganin et al., JMLR 2016): a domain discriminator on gradient-reversed features;
the feature extractor learns to make source and target indistinguishable."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from transferkit.adaptation.base import AdaptationMethod, adaptation_methods, domain_discriminator
from transferkit.adaptation.grl import grl_coefficient, reverse_gradient


def domain_loss(logit_s: Tensor, logit_t: Tensor, weight_s: Tensor | None = None, weight_t: Tensor | None = None):
    """BCE of the discriminator: source labelled 1, target 0 (optionally per-sample weighted)."""
    loss_s = F.binary_cross_entropy_with_logits(logit_s.squeeze(1), torch.ones_like(logit_s.squeeze(1)), weight_s)
    loss_t = F.binary_cross_entropy_with_logits(logit_t.squeeze(1), torch.zeros_like(logit_t.squeeze(1)), weight_t)
    return 0.5 * (loss_s + loss_t)


@adaptation_methods.register("dann")
class DANN(AdaptationMethod):
    name = "dann"

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__(features, num_classes)
        self.discriminator = domain_discriminator(features)
        self.last_domain_accuracy = 0.5

    def forward(self, f_s: Tensor, f_t: Tensor, logits_s: Tensor, logits_t: Tensor, progress: float) -> Tensor:
        coeff = grl_coefficient(progress)
        d = self.discriminator(reverse_gradient(torch.cat([f_s, f_t]), coeff))
        d_s, d_t = d[: len(f_s)], d[len(f_s) :]
        with torch.no_grad():
            self.last_domain_accuracy = float(((d_s > 0).float().mean() + (d_t <= 0).float().mean()) / 2)
        return domain_loss(d_s, d_t)
