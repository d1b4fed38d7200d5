"""PEFT strategies: the backbone stays frozen; small new parameters (LoRA, adapters, prompts)
or its biases (BitFit) train with the head. For large backbones and few images, and when
one backbone serves many tasks (each task stores only its few parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from transferkit.peft import apply_peft, create_peft
from transferkit.strategies.base import Stage, Strategy, strategies


@strategies.register("peft")
@dataclass
class PeftStrategy(Strategy):
    """Args:
    method: ``lora``, ``adapter``, ``bitfit`` or ``prompt`` (see :mod:`transferkit.peft`).
    options: The method's options, e.g. ``{"r": 4}`` for LoRA.
    """

    method: str = "lora"
    options: dict[str, Any] = field(default_factory=dict)
    name = "peft"

    def __post_init__(self) -> None:
        self._method = create_peft(self.method, **self.options)  # validates early

    def stages(self, epochs: int, num_groups: int) -> list[Stage]:
        return [Stage(0, epochs, trainable=0)]

    def prepare(self, model: nn.Module) -> None:
        if not any(spec["name"] == self.method for spec in model.peft):
            self._method = apply_peft(model, self.method, **self.options)

    def configure_trainable(self, model: nn.Module) -> None:
        self._method.mark_trainable(model.backbone.model)

    def explain(self) -> str:
        return f"backbone frozen, {self.method} parameters and the head trained (big backbone, few images)"


def _alias(method: str) -> type[PeftStrategy]:
    """``--strategy lora`` for ``--strategy peft --method lora``: same class, another default method."""
    default = method

    @dataclass
    class Alias(PeftStrategy):
        method: str = default  # type: ignore[assignment]

    Alias.__name__ = Alias.__qualname__ = f"{method.capitalize()}Strategy"
    Alias.name = method
    return Alias


for _method in ("lora", "adapter", "bitfit", "prompt"):
    strategies.register(_method)(_alias(_method))
