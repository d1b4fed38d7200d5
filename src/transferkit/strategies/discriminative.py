"""Discriminative (layer-wise) learning rates (Howard & Ruder, ULMFiT 2018).

Everything trains; group ``i`` of ``n`` uses ``lr · ratio^(1 - i/(n-1))``: the shallowest
group ``ratio·lr``, the deepest and the head ``lr``. https://arxiv.org/abs/1801.06146
"""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.strategies.base import Stage, Strategy, geometric_scales, strategies


@strategies.register("discriminative")
@dataclass
class DiscriminativeLR(Strategy):
    ratio: float = 0.01
    name = "discriminative"

    def stages(self, epochs: int, num_groups: int) -> list[Stage]:
        return [Stage(0, epochs, trainable=-1, lr_scales=geometric_scales(num_groups, self.ratio))]

    def explain(self) -> str:
        return f"all layers trained, learning rate geometric from {self.ratio:g}×lr (shallow) to lr (deep)"
