"""Cut a backbone in two at a layer-group boundary: a frozen *bottom* and a trainable *top*.

While the bottom is frozen its outputs cannot change, so the engine computes them once
and trains only the top (partial fine-tuning, early progressive-unfreezing stages).

How: the network's modules, with ``nn.Sequential`` containers opened, are taken as a
chain in registration order. That is the execution order of most CNNs (ResNet,
EfficientNet, MobileNet, ConvNeXt, DenseNet...), but not of every network (a ViT adds a
class token and position embedding in code, not in a module). So the chain is only
trusted after it reproduces the network's output on a probe batch; otherwise
:func:`find_split` returns ``None`` and the caller runs the whole network as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Split:
    """``top(bottom(x)) == network(x)``; ``bottom`` holds only parameters of groups before the cut."""

    index: int
    bottom: nn.Module
    top: nn.Module


class _Top(nn.Sequential):
    """The modules after the cut, flattening where a pooled network does in code.

    Classification networks flatten the pooled (N, C, 1, 1) map in ``forward`` before
    their ``Linear`` layers; the chain does the same before a ``Linear`` and at the end.
    """

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        for module in self:
            if isinstance(module, nn.Linear) and x.ndim == 4 and x.shape[-2:] == (1, 1):
                x = x.flatten(1)
            x = module(x)
        return x.flatten(1)


def _chain(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    out: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if type(child) is nn.Sequential:
            out.extend(_chain(child, path + "."))
        else:
            out.append((path, child))
    return out


def _probe(input_size: int) -> Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, input_size, input_size, generator=generator)


def find_split(model: nn.Module, groups: Sequence[Sequence[str]], index: int, input_size: int = 224) -> Split | None:
    """Split ``model`` so that ``bottom`` holds exactly the parameters of ``groups[:index]``.

    Args:
        model: Network whose forward returns pooled features (N, D).
        groups: Parameter names of each layer group, shallow → deep.
        index: Number of groups below the cut (1 ≤ index < len(groups)).
        input_size: Side of the probe images used to verify the chain.

    Returns:
        The split, or ``None`` when the network is not a verified chain at that boundary.
    """
    if not 0 < index < len(groups):
        return None
    chain = _chain(model)
    bottom_params = {n for names in groups[:index] for n in names}
    # the cut goes before the first chain element owning a parameter of a group >= index
    cut = None
    for i, (path, module) in enumerate(chain):
        names = {f"{path}.{n}" for n, _ in module.named_parameters()}
        if names and not names <= bottom_params:
            if names & bottom_params:
                return None  # one module straddles the boundary
            cut = i
            break
    if cut is None:
        return None
    seen_bottom = {f"{p}.{n}" for p, m in chain[:cut] for n, _ in m.named_parameters()}
    if seen_bottom != bottom_params:
        return None
    bottom, top = nn.Sequential(*(m for _, m in chain[:cut])), _Top(*(m for _, m in chain[cut:]))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters())
        x = _probe(input_size).to(param.device, param.dtype)
        with torch.no_grad():
            expected = model(x)
            got = top(bottom(x))
    except Exception:  # noqa: BLE001 - any failure means "not a chain", the caller falls back
        return None
    finally:
        model.train(was_training)
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
        return None
    return Split(index, bottom, top)
