"""LP-FT: linear probe, then fine-tune everything (Kumar et al., ICLR 2022).

Fine-tuning from a random head distorts pretrained features; training the head first
and then fine-tuning at a lower learning rate keeps them, improving in- and
out-of-distribution accuracy. https://arxiv.org/abs/2202.10054
"""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.errors import ConfigError
from transferkit.strategies.base import Stage, Strategy, strategies


@strategies.register("lp-ft")
@dataclass
class LinearProbeThenFineTune(Strategy):
    probe_epochs: int = 3
    ft_lr_scale: float = 0.1
    name = "lp-ft"

    def __post_init__(self) -> None:
        if self.probe_epochs < 1 or self.ft_lr_scale <= 0:
            raise ConfigError(
                f"lp-ft needs probe_epochs >= 1 and ft_lr_scale > 0, got {self.probe_epochs}, {self.ft_lr_scale}."
            )

    def stages(self, epochs: int, num_groups: int) -> list[Stage]:
        if epochs <= self.probe_epochs:
            return [Stage(0, epochs, trainable=0)]
        ft = (self.ft_lr_scale,) * num_groups
        return [
            Stage(0, self.probe_epochs, trainable=0),
            Stage(self.probe_epochs, epochs, trainable=-1, lr_scales=ft, head_lr_scale=self.ft_lr_scale),
        ]

    def explain(self) -> str:
        return (
            f"linear probe for {self.probe_epochs} epoch(s), then all layers at {self.ft_lr_scale:g}×lr "
            "(keeps pretrained features; robust under distribution shift)"
        )
