"""``create_backbone``: one entry point over timm and torchvision, with name suggestions."""

from __future__ import annotations

import functools
from pathlib import Path

import timm
import torchvision

from transferkit.backbones.base import ModelBackbone
from transferkit.backbones.classical import CLASSICAL, create_classical_backbone
from transferkit.backbones.timm_backbone import create_timm_backbone
from transferkit.backbones.torchvision_backbone import create_torchvision_backbone
from transferkit.errors import UnknownNameError
from transferkit.registry import suggest

_SOURCES = {
    "timm": create_timm_backbone,
    "torchvision": create_torchvision_backbone,
    "classical": create_classical_backbone,
}
_ALIASES = {"tv": "torchvision"}


@functools.cache
def torchvision_names() -> tuple[str, ...]:
    return tuple(torchvision.models.list_models(module=torchvision.models))


def resolve_name(name: str) -> tuple[str, str]:
    """``"resnet18"`` → ``("timm", "resnet18")``; ``"tv:resnet18"`` → ``("torchvision", "resnet18")``;
    ``"hog"`` → ``("classical", "hog")``.

    A bare name is looked up among the classical extractors, then timm, then torchvision.
    """
    source, sep, arch = name.partition(":")
    if sep:
        source = _ALIASES.get(source, source)
        if source not in _SOURCES:
            raise UnknownNameError(
                f"Unknown backbone source {source!r} in {name!r}. Use 'timm:', 'torchvision:' or 'classical:'."
            )
        names = {"timm": None, "torchvision": torchvision_names(), "classical": tuple(CLASSICAL)}[source]
        if timm.is_model(arch) if names is None else arch in names:
            return source, arch
        choices = timm.list_models() if names is None else list(names)
    else:
        arch = name
        if arch in CLASSICAL:
            return "classical", arch
        if timm.is_model(arch):
            return "timm", arch
        if arch in torchvision_names():
            return "torchvision", arch
        choices = timm.list_models() + list(torchvision_names())
    guesses = suggest(arch, choices)
    hint = f" Did you mean {', '.join(map(repr, guesses))}?" if guesses else ""
    raise UnknownNameError(
        f"No backbone named {name!r}.{hint} `transferkit info` lists backbones with weights on this machine."
    )


def create_backbone(name: str, weights: str | Path | None = "imagenet", **kwargs: object) -> ModelBackbone:
    """A pretrained (or randomly initialised) backbone by name.

    Args:
        name: ``"efficientnet_lite0"``, ``"resnet50"``, ``"timm:convnext_tiny"``, ``"tv:vit_b_16"``...
        weights: ``"imagenet"`` to load ImageNet weights from offline sources (error if absent),
            ``None`` or ``"none"`` for random init, or the path of a state_dict file.
        kwargs: Passed to the model constructor.

    Example:
        >>> bb = create_backbone("resnet18", weights=None)
        >>> bb.num_features, len(bb.layer_groups())
        (512, 5)
    """
    if isinstance(weights, str) and weights.lower() in {"none", "random", "scratch"}:
        weights = None
    source, arch = resolve_name(name)
    return _SOURCES[source](arch, weights, **kwargs)
