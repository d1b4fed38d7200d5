"""Full fine-tuning: every layer trains at the same learning rate."""

from __future__ import annotations

from transferkit.strategies.base import Stage, Strategy, strategies


@strategies.register("fine-tune")
class FineTune(Strategy):
    name = "fine-tune"

    def stages(self, epochs: int, num_groups: int) -> list[Stage]:
        return [Stage(0, epochs, trainable=-1)]

    def explain(self) -> str:
        return "all layers trained (enough images, or a domain far from ImageNet)"
