"""Strategies decide, epoch by epoch, which layer groups train and at what learning rate.

A strategy is a short list of :class:`Stage` s. Each stage fixes how many of the deepest
layer groups are trainable and the learning-rate multiplier of every group; the engine
builds a fresh optimizer and scheduler at each stage boundary (as fastai and Lightning's
``BackboneFinetuning`` do). Stages depend only on the epoch number, so a resumed run is
in the same stage as the uninterrupted one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import nn

from transferkit.errors import ConfigError
from transferkit.registry import Registry


@dataclass(frozen=True)
class Stage:
    """Epochs ``[start, end)`` with the deepest ``trainable`` groups unfrozen (``-1`` = all).

    ``lr_scales[i]`` multiplies the base learning rate of group ``i`` (shallow → deep);
    ``head_lr_scale`` that of the head. ``bn_eval`` keeps every BatchNorm layer in eval mode
    (running statistics of pretraining, also in trainable groups) during the stage.
    """

    start: int
    end: int
    trainable: int
    lr_scales: tuple[float, ...] | None = None
    head_lr_scale: float = 1.0
    bn_eval: bool = False

    def num_trainable(self, num_groups: int) -> int:
        return num_groups if self.trainable < 0 else min(self.trainable, num_groups)

    def scale(self, group: int) -> float:
        return 1.0 if self.lr_scales is None else self.lr_scales[group]


class Strategy(ABC):
    """Base of every strategy: ``stages`` plus a one-line explanation for users."""

    name: str = ""

    @abstractmethod
    def stages(self, epochs: int, num_groups: int) -> list[Stage]: ...

    @abstractmethod
    def explain(self) -> str: ...

    def prepare(self, model: nn.Module) -> None:  # noqa: B027  (optional hook)
        """Change the model's structure before training (PEFT modules); most strategies do not."""

    def configure_trainable(self, model: nn.Module) -> None:  # noqa: B027  (optional hook)
        """Adjust ``requires_grad`` after a stage froze/unfroze its layer groups (e.g. BitFit's biases)."""

    def stage_at(self, epoch: int, epochs: int, num_groups: int) -> tuple[int, Stage]:
        stages = self.stages(epochs, num_groups)
        for index, stage in enumerate(stages):
            if stage.start <= epoch < stage.end:
                return index, stage
        return len(stages) - 1, stages[-1]


strategies: Registry[type[Strategy]] = Registry("strategy")


def create_strategy(name: str, **kwargs: object) -> Strategy:
    """A strategy by registry name, e.g. ``create_strategy("partial", groups=2)``."""
    return strategies.create(name, **kwargs)  # type: ignore[return-value]


def geometric_scales(num_groups: int, ratio: float) -> tuple[float, ...]:
    """Multipliers from ``ratio`` (shallowest group) up to 1.0 (deepest), geometrically spaced."""
    if not 0 < ratio <= 1:
        raise ConfigError(f"lr ratio must be in (0, 1], got {ratio}.")
    if num_groups == 1:
        return (1.0,)
    return tuple(ratio ** (1 - i / (num_groups - 1)) for i in range(num_groups))
