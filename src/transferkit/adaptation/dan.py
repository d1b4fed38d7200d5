"""DAN (Long et al., ICML 2015): minimise the multi-kernel MMD between source and target
features, with Gaussian kernels at bandwidths ``base × 2^k`` around the batch's mean distance."""

from __future__ import annotations

import torch
from torch import Tensor

from transferkit.adaptation.base import AdaptationMethod, adaptation_methods


def mk_mmd2(x: Tensor, y: Tensor, scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)) -> Tensor:
    """Unbiased squared MMD with a sum of Gaussian kernels (needs at least 2 rows per side)."""
    z = torch.cat([x, y]).float()
    d2 = torch.cdist(z, z).pow(2)
    n, m = len(x), len(y)
    base = d2.detach().sum() / (len(z) ** 2 - len(z))
    kernel = sum(torch.exp(-d2 / (base * s + 1e-12)) for s in scales)
    kxx, kyy, kxy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return xx + yy - 2 * kxy.mean()


@adaptation_methods.register("dan")
class DAN(AdaptationMethod):
    name = "dan"

    def forward(self, f_s: Tensor, f_t: Tensor, logits_s: Tensor, logits_t: Tensor, progress: float) -> Tensor:
        return mk_mmd2(f_s, f_t)
