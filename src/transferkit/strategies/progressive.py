"""Progressive (gradual) unfreezing (Howard & Ruder, ULMFiT 2018).

Train the head first, then unfreeze one more layer group, deepest first, every
``epochs_per_stage`` epochs; each stage starts a fresh optimizer and schedule.
Optional layer-wise ``ratio`` as in :mod:`discriminative`.
"""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.errors import ConfigError
from transferkit.strategies.base import Stage, Strategy, geometric_scales, strategies


@strategies.register("progressive")
@dataclass
class ProgressiveUnfreezing(Strategy):
    epochs_per_stage: int = 1
    ratio: float = 1.0
    name = "progressive"

    def __post_init__(self) -> None:
        if self.epochs_per_stage < 1:
            raise ConfigError(f"epochs_per_stage must be >= 1, got {self.epochs_per_stage}.")

    def stages(self, epochs: int, num_groups: int) -> list[Stage]:
        scales = None if self.ratio == 1.0 else geometric_scales(num_groups, self.ratio)
        stages = []
        for k in range(num_groups + 1):
            start = k * self.epochs_per_stage
            if start >= epochs:
                break
            last = k == num_groups or start + self.epochs_per_stage >= epochs
            end = epochs if last else start + self.epochs_per_stage
            stages.append(Stage(start, end, trainable=k, lr_scales=scales))
        return stages

    def explain(self) -> str:
        return f"head first, then one more layer group unfrozen every {self.epochs_per_stage} epoch(s), deepest first"
