"""Parameter-efficient fine-tuning: small new parameters inside a frozen backbone.

Every method keeps the backbone's own parameter names (layer groups, checkpoints and
pretrained weights still line up) and adds new parameters with recognisable names
(``lora_A``, ``adapter``, ``prompt``). ``apply_peft`` records what was applied in the
model's spec, so :func:`transferkit.load_model` re-applies it before loading weights.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import nn

from transferkit.registry import Registry


class PeftMethod(ABC):
    """One PEFT method: ``apply`` adds its modules, ``mark_trainable`` unfreezes what it trains."""

    name: str = ""

    @abstractmethod
    def apply(self, network: nn.Module, input_size: int) -> None:
        """Add the method's parameters to ``network`` (the backbone's inner model)."""

    def mark_trainable(self, network: nn.Module) -> None:
        """Called after the backbone is frozen; by default the parameters ``apply`` added train."""
        for name, param in network.named_parameters():
            if is_peft_parameter(name):
                param.requires_grad_(True)

    def options(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


peft_methods: Registry[type[PeftMethod]] = Registry("PEFT method")
PEFT_MARKERS = ("lora_A", "lora_B", "adapter.", "prompt")


def is_peft_parameter(name: str) -> bool:
    return any(marker in name for marker in PEFT_MARKERS)


def create_peft(name: str, **options: Any) -> PeftMethod:
    return peft_methods.create(name, **options)  # type: ignore[return-value]


def apply_peft(model: nn.Module, name: str, **options: Any) -> PeftMethod:
    """Apply PEFT method ``name`` to a :class:`TransferModel`'s backbone and record it in ``model.peft``."""
    method = create_peft(name, **options)
    backbone = model.backbone
    method.apply(backbone.model, model.data_config.input_size)
    backbone.__dict__.pop("_splits", None)  # cuts computed before no longer see the new modules
    model.peft.append({"name": name, **method.options()})
    return method


def peft_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if is_peft_parameter(n))
