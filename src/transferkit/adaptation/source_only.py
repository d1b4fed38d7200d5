"""Source only: no adaptation loss; the baseline every method is compared with."""

from __future__ import annotations

from torch import Tensor

from transferkit.adaptation.base import AdaptationMethod, adaptation_methods


@adaptation_methods.register("source-only")
class SourceOnly(AdaptationMethod):
    name = "source-only"

    def forward(self, f_s: Tensor, f_t: Tensor, logits_s: Tensor, logits_t: Tensor, progress: float) -> Tensor:
        return f_s.new_zeros(())
