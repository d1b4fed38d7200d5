"""Visual prompts: a few learnable inputs, the backbone untouched.

- Vision transformers (timm): VPT-shallow (Jia et al., ECCV 2022), ``tokens`` learnable
  tokens inserted after the class token, before the first block.
- Any other backbone: padding prompts (Bahng et al., 2022), a learnable frame of ``pad``
  pixels added to the border of every input image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from transferkit.errors import ConfigError
from transferkit.peft.base import PeftMethod, peft_methods


class TokenPrompt(nn.Module):
    def __init__(self, tokens: int, dim: int, after: int) -> None:
        super().__init__()
        self.prompt = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.prompt, std=0.02)
        self.after = after  # insert after the class/register tokens

    def forward(self, x: Tensor) -> Tensor:
        prompt = self.prompt.expand(len(x), -1, -1).to(x.dtype)
        return torch.cat([x[:, : self.after], prompt, x[:, self.after :]], dim=1)


class PadPrompt(nn.Module):
    def __init__(self, size: int, pad: int) -> None:
        super().__init__()
        if pad < 1:  # pad=0 would slice [0:-0], i.e. make the whole image the prompt
            raise ConfigError(f"Prompt padding must be at least 1 pixel, got pad={pad}.")
        if 2 * pad >= size:
            raise ConfigError(f"Prompt padding {pad} leaves nothing of a {size}px image; use pad < {size // 2}.")
        self.size = size
        self.prompt = nn.Parameter(torch.zeros(1, 3, size, size))
        mask = torch.ones(1, 1, size, size)
        mask[..., pad:-pad, pad:-pad] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.size, self.size):
            raise ConfigError(
                f"The padding prompt was made for {self.size}px inputs, got {tuple(x.shape[-2:])}; "
                "train and predict at the model's input size."
            )
        return x + (self.prompt * self.mask).to(x.dtype)


@peft_methods.register("prompt")
@dataclass
class VisualPrompt(PeftMethod):
    """Args:
    tokens: Prompt tokens for ViTs.
    pad: Border width in pixels for other backbones.
    """

    tokens: int = 10
    pad: int = 8
    name = "prompt"

    def apply(self, network: nn.Module, input_size: int) -> None:
        is_vit = hasattr(network, "num_prefix_tokens") and hasattr(network, "norm_pre") and hasattr(network, "blocks")
        if is_vit:
            dim = network.embed_dim
            prompt = TokenPrompt(self.tokens, dim, network.num_prefix_tokens)
            network.norm_pre.add_module("prompt", prompt)
            network.norm_pre.register_forward_hook(lambda m, _i, out: m.prompt(out))
            network.num_prefix_tokens += self.tokens  # average pooling skips the prompts
        else:
            network.add_module("prompt", PadPrompt(input_size, self.pad))
            network.register_forward_pre_hook(lambda m, args: (m.prompt(args[0]), *args[1:]))
