"""One forward pass of a probe image with temporary hooks: how modules are found by what they
output (their order, shapes) rather than by per-architecture tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def probe_forward(
    network: nn.Module, input_size: int, hooks: Sequence[tuple[nn.Module, Callable]], batch: int = 1
) -> None:
    """Run ``batch`` zero images of ``input_size`` through ``network`` in eval mode, without gradients,
    with each ``(module, forward_hook)`` registered for the pass only; the training mode is restored."""
    handles = [module.register_forward_hook(hook) for module, hook in hooks]
    param = next(network.parameters())
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            network(torch.zeros(batch, 3, input_size, input_size, device=param.device, dtype=param.dtype))
    finally:
        network.train(was_training)
        for handle in handles:
            handle.remove()
