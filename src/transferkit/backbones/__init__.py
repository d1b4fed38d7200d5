"""Pretrained networks as backbones: timm and torchvision behind one contract.

Names are imported on first use (PEP 562): ``transferkit.backbones.offline`` answers which weights
exist without importing torch or timm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transferkit._lazy import lazy_exports

if TYPE_CHECKING:
    from transferkit.backbones.base import Backbone, DataConfig, LayerGroup, ModelBackbone, count_parameters
    from transferkit.backbones.factory import create_backbone, resolve_name

_LAZY = {
    "Backbone": "transferkit.backbones.base",
    "DataConfig": "transferkit.backbones.base",
    "LayerGroup": "transferkit.backbones.base",
    "ModelBackbone": "transferkit.backbones.base",
    "count_parameters": "transferkit.backbones.base",
    "create_backbone": "transferkit.backbones.factory",
    "resolve_name": "transferkit.backbones.factory",
}

__all__ = [
    "Backbone",
    "DataConfig",
    "LayerGroup",
    "ModelBackbone",
    "count_parameters",
    "create_backbone",
    "resolve_name",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
