"""CDAN(+E) (Long et al., NeurIPS 2018): the discriminator sees the multilinear map
``f ⊗ softmax(g)`` (class-conditional alignment); a random projection replaces the outer
product when it would exceed ``max_dim``. ``entropy=True`` (CDAN+E) weights each sample by
``1 + exp(-H(g))``, so confident predictions count more."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from transferkit.adaptation.base import AdaptationMethod, adaptation_methods, domain_discriminator
from transferkit.adaptation.dann import domain_loss
from transferkit.adaptation.grl import grl_coefficient, reverse_gradient


class _RandomizedMultilinear(nn.Module):
    def __init__(self, features: int, num_classes: int, dim: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("rf", torch.randn(features, dim, generator=generator))
        self.register_buffer("rg", torch.randn(num_classes, dim, generator=generator))
        self.dim = dim

    def forward(self, f: Tensor, g: Tensor) -> Tensor:
        return (f @ self.rf) * (g @ self.rg) / self.dim**0.5


def entropy(probs: Tensor) -> Tensor:
    return -(probs * torch.log(probs + 1e-5)).sum(1)


@adaptation_methods.register("cdan")
class CDAN(AdaptationMethod):
    name = "cdan"

    def __init__(self, features: int, num_classes: int, entropy: bool = True, max_dim: int = 4096) -> None:
        super().__init__(features, num_classes)
        self.entropy = entropy
        self.randomized = features * num_classes > max_dim
        width = 1024 if self.randomized else features * num_classes
        self.map = _RandomizedMultilinear(features, num_classes, width) if self.randomized else None
        self.discriminator = domain_discriminator(width)

    def multilinear(self, f: Tensor, g: Tensor) -> Tensor:
        if self.map is not None:
            return self.map(f, g)
        return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)

    def forward(self, f_s: Tensor, f_t: Tensor, logits_s: Tensor, logits_t: Tensor, progress: float) -> Tensor:
        f = torch.cat([f_s, f_t])
        g = torch.cat([logits_s, logits_t]).float().softmax(1).detach()
        d = self.discriminator(reverse_gradient(self.multilinear(f, g), grl_coefficient(progress)))
        n = len(f_s)
        if not self.entropy:
            return domain_loss(d[:n], d[n:])
        w = 1.0 + torch.exp(-entropy(g))
        w_s, w_t = w[:n] / w[:n].sum() * n, w[n:] / w[n:].sum() * len(f_t)
        return domain_loss(d[:n], d[n:], w_s, w_t)
