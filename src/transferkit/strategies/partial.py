"""Partial fine-tuning: the deepest ``groups`` layer groups train, the shallow ones stay frozen.

Shallow layers hold generic edges and textures (Yosinski et al., 2014); deep ones are task specific.
"""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.errors import ConfigError
from transferkit.strategies.base import Stage, Strategy, strategies


@strategies.register("partial")
@dataclass
class PartialFineTune(Strategy):
    groups: int = 1
    name = "partial"

    def __post_init__(self) -> None:
        if self.groups < 1:
            raise ConfigError(
                f"partial fine-tuning needs groups >= 1, got {self.groups}; use feature-extraction for 0."
            )

    def stages(self, epochs: int, num_groups: int) -> list[Stage]:
        return [Stage(0, epochs, trainable=self.groups)]

    def explain(self) -> str:
        return f"last {self.groups} layer group(s) trained, the rest frozen (moderate data)"
