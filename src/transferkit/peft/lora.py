"""LoRA (Hu et al., ICLR 2022): ``W x + (alpha / r) B A x`` with ``A`` (r × in), ``B`` (out × r),
``B = 0`` at start so the network begins exactly as pretrained. Applied to ``nn.Linear``
(ViT attention ``qkv``/``proj`` and MLPs) and to ``nn.Conv2d`` with ``groups == 1`` (``A`` a
conv with the layer's kernel, ``B`` a 1×1 conv, as in HF peft). ``merge`` folds ``B A`` into
``W`` for inference at no extra cost; ``unmerge`` takes it out again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.errors import ConfigError
from transferkit.peft.base import PeftMethod, peft_methods


class _LoRAMixin:
    r: int
    scaling: float
    merged: bool
    lora_A: nn.Parameter
    lora_B: nn.Parameter
    lora_merged: Tensor
    weight: nn.Parameter

    def _init_lora(self, r: int, alpha: float, dropout: float, a_shape: tuple, b_shape: tuple) -> None:
        self.r, self.scaling = r, alpha / r
        # a buffer, so a checkpoint saved after merge() loads back merged (not added twice)
        self.register_buffer("lora_merged", torch.zeros((), dtype=torch.bool, device=self.weight.device))
        self.lora_A = nn.Parameter(self.weight.new_empty(a_shape))
        self.lora_B = nn.Parameter(self.weight.new_zeros(b_shape))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def delta_weight(self) -> Tensor:
        b = self.lora_B.reshape(self.lora_B.shape[0], -1)
        a = self.lora_A.reshape(self.lora_A.shape[0], -1)
        return (b @ a).reshape(self.weight.shape) * self.scaling

    @property
    def merged(self) -> bool:
        return bool(self.lora_merged)

    def merge(self) -> None:
        if not self.merged:
            with torch.no_grad():
                self.weight += self.delta_weight()
            self.lora_merged.fill_(True)

    def unmerge(self) -> None:
        if self.merged:
            with torch.no_grad():
                self.weight -= self.delta_weight()
            self.lora_merged.fill_(False)


class LoRALinear(nn.Linear, _LoRAMixin):
    """An ``nn.Linear`` sharing the original's weight and bias, plus the low-rank update."""

    @classmethod
    def wrap(cls, base: nn.Linear, r: int, alpha: float, dropout: float) -> LoRALinear:
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        layer.in_features, layer.out_features = base.in_features, base.out_features
        layer.weight, layer.bias = base.weight, base.bias
        layer._init_lora(r, alpha, dropout, (r, base.in_features), (base.out_features, r))
        return layer

    def forward(self, x: Tensor) -> Tensor:
        out = F.linear(x, self.weight, self.bias)
        if self.merged:
            return out
        return out + F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B) * self.scaling


class LoRAConv2d(nn.Conv2d, _LoRAMixin):
    """An ``nn.Conv2d`` (groups 1) sharing the original's weight and bias, plus the low-rank update."""

    @classmethod
    def wrap(cls, base: nn.Conv2d, r: int, alpha: float, dropout: float) -> LoRAConv2d:
        layer = cls.__new__(cls)
        # Conv2d's own constructor sets every attribute its forward needs (public API); the weights it
        # creates on the "meta" device cost nothing and are replaced by the original's shared ones
        nn.Conv2d.__init__(
            layer,
            base.in_channels,
            base.out_channels,
            base.kernel_size,
            base.stride,
            base.padding,
            base.dilation,
            base.groups,
            base.bias is not None,
            base.padding_mode,
            device="meta",
        )
        layer.weight, layer.bias = base.weight, base.bias
        a_shape = (r, base.in_channels, *base.kernel_size)
        layer._init_lora(r, alpha, dropout, a_shape, (base.out_channels, r, 1, 1))
        return layer

    def forward(self, x: Tensor) -> Tensor:
        out = self._conv_forward(x, self.weight, self.bias)
        if self.merged:
            return out
        hidden = F.conv2d(self.lora_dropout(x), self.lora_A, None, self.stride, self.padding, self.dilation)
        return out + F.conv2d(hidden, self.lora_B) * self.scaling


@peft_methods.register("lora")
@dataclass
class LoRA(PeftMethod):
    """Args:
    r: Rank of the update.
    alpha: Scale numerator (update scaled by ``alpha / r``).
    dropout: Dropout on the LoRA branch's input.
    target: Regular expression on module paths (default: every eligible layer).
    convs: ``all`` (default: every ``groups == 1`` Conv2d too, for CNNs) or ``none`` (Linear
        layers only, the ViT recipe). Depthwise/grouped convs are never adapted.
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target: str = ""
    convs: str = "all"
    name = "lora"

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ConfigError(f"LoRA rank r must be >= 1, got {self.r}.")
        if self.convs not in ("none", "all"):
            raise ConfigError(f"convs must be none or all, got {self.convs!r}.")

    def _wanted(self, path: str, module: nn.Module) -> bool:
        if self.target and not re.search(self.target, path):
            return False
        # exact types: subclasses such as MultiheadAttention's out_proj are used by weight, not forward
        if type(module) is nn.Linear:
            return True
        return type(module) is nn.Conv2d and module.groups == 1 and self.convs == "all"

    def apply(self, network: nn.Module, input_size: int) -> None:
        targets = [(path, m) for path, m in network.named_modules() if path and self._wanted(path, m)]
        if not targets:
            raise ConfigError(
                f"LoRA found no layer to adapt (target={self.target!r}, convs={self.convs!r}). "
                "Give a --lora-target regex matching Linear/Conv2d module paths."
            )
        for path, module in targets:
            parent_path, _, attr = path.rpartition(".")
            parent = network.get_submodule(parent_path) if parent_path else network
            wrap = LoRALinear.wrap if isinstance(module, nn.Linear) else LoRAConv2d.wrap
            setattr(parent, attr, wrap(module, self.r, self.alpha, self.dropout))


def lora_layers(model: nn.Module) -> list[_LoRAMixin]:
    return [m for m in model.modules() if isinstance(m, _LoRAMixin)]


def merge_lora(model: nn.Module) -> int:
    """Fold every LoRA update into its layer's weight; returns how many layers were merged."""
    layers = lora_layers(model)
    for layer in layers:
        layer.merge()
    return len(layers)


def unmerge_lora(model: nn.Module) -> int:
    layers = lora_layers(model)
    for layer in layers:
        layer.unmerge()
    return len(layers)
