"""Bottleneck adapters (Houlsby et al., ICML 2019; Rebuffi et al., NeurIPS 2017 for CNNs):
after every block, ``y + up(act(down(y)))`` with ``up`` zero-initialised, so the network
starts exactly as pretrained. 1×1 convolutions on feature maps, Linear layers on tokens.

Blocks are the elements of the network's ``nn.Sequential`` stages (ResNet's BasicBlocks,
EfficientNet's inverted residuals, ViT's transformer blocks), found without per-architecture code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from transferkit.backbones.probe import probe_forward
from transferkit.errors import ConfigError
from transferkit.peft.base import PeftMethod, peft_methods


class Adapter(nn.Module):
    def __init__(self, channels: int, hidden: int, spatial: bool) -> None:
        super().__init__()
        layer = (lambda i, o: nn.Conv2d(i, o, 1)) if spatial else nn.Linear
        self.down = layer(channels, hidden)
        self.act = nn.GELU()
        self.up = layer(hidden, channels)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.up(self.act(self.down(x)))


def _adapter_hook(module: nn.Module, _inputs: tuple, output: Tensor) -> Tensor:
    return module.adapter(output)


def find_blocks(network: nn.Module) -> list[str]:
    """Paths of the modules inside nested ``nn.Sequential`` stages that own parameters."""
    blocks = []
    for path, module in network.named_modules():
        if type(module) is not nn.Sequential:
            continue
        for name, child in module.named_children():
            is_container = type(child) is nn.Sequential
            owns_params = any(True for _ in child.parameters())
            is_layer = isinstance(child, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._NormBase, nn.LayerNorm))
            if not is_container and owns_params and not is_layer:
                blocks.append(f"{path}.{name}" if path else name)
    return blocks


@peft_methods.register("adapter")
@dataclass
class Adapters(PeftMethod):
    """Args:
    reduction: Bottleneck width = channels / reduction (at least 4).
    """

    reduction: int = 8
    name = "adapter"

    def apply(self, network: nn.Module, input_size: int) -> None:
        blocks = find_blocks(network)
        if not blocks:
            raise ConfigError("Found no residual blocks in nn.Sequential stages to put adapters after.")
        shapes: dict[str, torch.Size] = {}
        hooks = [
            (network.get_submodule(path), lambda _m, _i, out, path=path: shapes.__setitem__(path, out.shape))
            for path in blocks
        ]
        probe_forward(network, input_size, hooks)
        param = next(network.parameters())
        for path in blocks:
            shape = shapes.get(path)
            if shape is None or len(shape) not in (3, 4):
                continue
            channels = shape[1] if len(shape) == 4 else shape[-1]
            block = network.get_submodule(path)
            adapter = Adapter(channels, max(4, channels // self.reduction), spatial=len(shape) == 4)
            block.add_module("adapter", adapter.to(param.device))
            block.register_forward_hook(_adapter_hook)
