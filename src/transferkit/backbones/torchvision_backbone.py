"""Any torchvision classification model as a :class:`Backbone`.

The classifier is the last ``nn.Linear`` of the network; it is replaced by ``Identity`` so the
network returns the features that fed it. Layer groups are found from the parameter layout.
"""

from __future__ import annotations

from pathlib import Path

import torchvision
from torch import nn

from transferkit.backbones._grouping import find_layer_groups
from transferkit.backbones.base import DataConfig, ModelBackbone
from transferkit.backbones.weights import (
    hub_checkpoint,
    load_into,
    missing_weights_message,
    read_state_dict,
    source_head,
)
from transferkit.errors import ConfigError, WeightsNotFoundError


def _drop_classifier(model: nn.Module) -> tuple[int, str]:
    """Replace the last Linear by Identity; return its input width and module path."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"{type(model).__name__} has no nn.Linear classifier to replace.")
    name, last = linears[-1]
    parent_path, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, attr, nn.Identity())
    return last.in_features, name


def create_torchvision_backbone(arch: str, weights: str | Path | None, **kwargs: object) -> ModelBackbone:
    """Build torchvision's ``arch`` without its classifier and load ``weights`` (see timm's twin)."""
    model = torchvision.models.get_model(arch, weights=None, **kwargs)
    try:
        default = torchvision.models.get_model_weights(arch).DEFAULT
    except (ValueError, AttributeError):
        default = None
    state_dict = None
    if weights == "imagenet":
        file = hub_checkpoint(default.url if default is not None else None)
        if file is None:
            raise WeightsNotFoundError(missing_weights_message(arch, ["torch hub checkpoints"]))
        state_dict, source = read_state_dict(file), f"torchvision cache ({file.name})"
    elif weights is not None:
        state_dict, source = read_state_dict(weights), str(weights)
    num_features, head = _drop_classifier(model)
    if state_dict is not None:
        load_into(model, state_dict, source, head)
    data_config = DataConfig()
    if default is not None:
        t = default.transforms()
        crop = t.crop_size[0] if isinstance(t.crop_size, (list, tuple)) else t.crop_size
        data_config = DataConfig(int(crop), tuple(t.mean), tuple(t.std), t.interpolation.value)
    backbone = ModelBackbone(f"torchvision:{arch}", model, num_features, data_config, find_layer_groups(model))
    backbone.set_source_head(source_head(state_dict or {}, head))
    return backbone
