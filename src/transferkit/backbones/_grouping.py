"""Find layer groups of any network automatically, from its parameter layout.

Used for networks that do not declare their stages (torchvision's). No per-architecture
rules: descend through wrapper modules until the network splits into several parts of
comparable size, then merge slivers (a stem conv, a final norm) into their neighbour.
"""

from __future__ import annotations

from torch import nn

from transferkit.backbones.base import group_name

MIN_GROUPS = 4
DOMINANT_SHARE = 0.8  # a part holding more than this is a wrapper: look inside it
SLIVER_SHARE = 0.01  # a part holding less than this joins its neighbour


def _parts(path: str, module: nn.Module) -> list[tuple[str, nn.Module | None, list[str]]]:
    """Direct parameters first, then each child holding parameters, in registration order."""
    prefix = f"{path}." if path else ""
    parts: list[tuple[str, nn.Module | None, list[str]]] = []
    direct = [f"{prefix}{n}" for n, _ in module.named_parameters(recurse=False)]
    if direct:
        parts.append((path, None, direct))
    for cname, child in module.named_children():
        names = [f"{prefix}{cname}.{n}" for n, _ in child.named_parameters()]
        if names:
            parts.append((f"{prefix}{cname}", child, names))
    return parts


def find_layer_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Parameter names of each layer group of ``model``, shallow → deep."""
    sizes = dict(model.named_parameters())
    total = sum(p.numel() for p in sizes.values()) or 1

    def share(names: list[str]) -> float:
        return sum(sizes[n].numel() for n in names) / total

    units = _parts("", model)
    while True:
        expandable = [i for i, (_, mod, _) in enumerate(units) if mod is not None and len(_parts("", mod)) > 1]
        if not expandable:
            break
        largest = max(expandable, key=lambda i: share(units[i][2]))
        if len(units) >= MIN_GROUPS and share(units[largest][2]) <= DOMINANT_SHARE:
            break
        path, mod, _ = units[largest]
        assert mod is not None
        units[largest : largest + 1] = _parts(path, mod)

    groups: list[tuple[str, list[str]]] = []
    pending: list[str] = []
    for _, _, names in units:
        pending += names
        if share(pending) >= SLIVER_SHARE:
            groups.append(pending)
            pending = []
    if pending:
        if groups:
            groups[-1] = groups[-1] + pending
        else:
            groups.append(pending)
    return [(group_name(names), names) for names in groups]
