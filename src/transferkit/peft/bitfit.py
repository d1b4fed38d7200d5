"""BitFit (Ben Zaken et al., ACL 2022): train only the bias terms (and the new head)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from transferkit.errors import ConfigError
from transferkit.peft.base import PeftMethod, peft_methods


@peft_methods.register("bitfit")
@dataclass
class BitFit(PeftMethod):
    name = "bitfit"

    def apply(self, network: nn.Module, input_size: int) -> None:
        if not any(n.endswith("bias") for n, _ in network.named_parameters()):
            raise ConfigError("BitFit needs bias terms, and this backbone has none.")

    def mark_trainable(self, network: nn.Module) -> None:
        for name, param in network.named_parameters():
            if name.endswith("bias"):
                param.requires_grad_(True)
