"""Pretrained networks as backbones: timm and torchvision behind one contract."""

from transferkit.backbones.base import Backbone, DataConfig, LayerGroup, ModelBackbone, count_parameters
from transferkit.backbones.factory import create_backbone, resolve_name

__all__ = [
    "Backbone",
    "DataConfig",
    "LayerGroup",
    "ModelBackbone",
    "count_parameters",
    "create_backbone",
    "resolve_name",
]
