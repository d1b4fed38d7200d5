"""LP-FT: linear probe, then fine-tune everything (Kumar et al., ICLR 2022).

Fine-tuning from a random head distorts pretrained features; training the head first
and then fine-tuning at a lower learning rate keeps them, improving in- and
out-of-distribution accuracy. https://arxiv.org/abs/2202.10054

The probe is solved to convergence on cached features (``head_solver="lbfgs"``), as in the
paper (logistic regression, not a few SGD epochs). During fine-tuning, BatchNorm layers keep
their pretraining statistics (``freeze_bn``): switching them to batch statistics of small
target batches changes every feature the probe was fitted to, and the first fine-tuning
epoch then undoes the probe instead of refining it.
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
    freeze_bn: bool = True
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
            Stage(
                self.probe_epochs,
                epochs,
                trainable=-1,
                lr_scales=ft,
                head_lr_scale=self.ft_lr_scale,
                bn_eval=self.freeze_bn,
            ),
        ]

    def explain(self) -> str:
        return (
            f"linear probe ({self.probe_epochs} epoch(s), or solved in one), then all layers at "
            f"{self.ft_lr_scale:g}×lr{' with BatchNorm statistics frozen' if self.freeze_bn else ''} "
            "(keeps pretrained features; robust under distribution shift)"
        )
