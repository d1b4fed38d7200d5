"""Any timm model as a :class:`Backbone`; layer groups from timm's own ``group_matcher``."""

from __future__ import annotations

from pathlib import Path

import timm
from timm.models import group_parameters

from transferkit.backbones._grouping import find_layer_groups
from transferkit.backbones.base import DataConfig, ModelBackbone, group_name
from transferkit.backbones.weights import (
    LITE0_MEAN,
    LITE0_STD,
    LITE_PACKAGES,
    convert_lite0,
    hf_cached_file,
    hub_checkpoint,
    lite_package_file,
    load_into,
    missing_weights_message,
    read_state_dict,
    source_head,
)
from transferkit.errors import WeightsNotFoundError


def create_timm_backbone(arch: str, weights: str | Path | None, **kwargs: object) -> ModelBackbone:
    """Build timm's ``arch`` with its classifier removed and load ``weights``.

    Args:
        arch: timm architecture name, e.g. ``"resnet18"``.
        weights: ``"imagenet"`` (offline sources only), ``None`` (random init) or a file.
        kwargs: Passed to ``timm.create_model`` (e.g. ``img_size`` for ViTs, ``drop_path_rate``).
    """
    model = timm.create_model(arch, pretrained=False, **kwargs)
    cfg = timm.data.resolve_data_config({}, model=model)
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    stage_depths = [len(s) for s in getattr(model, "blocks", [])] if arch in LITE_PACKAGES else []
    head = str(model.pretrained_cfg.get("classifier") or "")
    model.reset_classifier(0)
    if weights == "imagenet":
        looked = []
        state_dict = None
        if arch in LITE_PACKAGES:
            looked.append(f"the {LITE_PACKAGES[arch]} package")
            if (file := lite_package_file(arch)) is not None:
                state_dict, mean, std = convert_lite0(read_state_dict(file), stage_depths), LITE0_MEAN, LITE0_STD
        if state_dict is None:
            hf_id = model.pretrained_cfg.get("hf_hub_id")
            url = model.pretrained_cfg.get("url")
            looked += [f"Hugging Face cache ({hf_id})", "torch hub checkpoints"]
            file = hf_cached_file(hf_id) or hub_checkpoint(url)
            if file is None:
                raise WeightsNotFoundError(missing_weights_message(arch, looked))
            state_dict = read_state_dict(file)
        load_into(model, state_dict, f"ImageNet weights of {arch}", head)
    elif weights is not None:
        state_dict = read_state_dict(weights)
        load_into(model, state_dict, str(weights), head)
    else:
        state_dict = {}

    try:
        by_group = group_parameters(model, model.group_matcher(coarse=True))
        groups = [(group_name(names), list(names)) for _, names in sorted(by_group.items()) if names]
    except (AttributeError, NotImplementedError):  # a model with no group_matcher
        groups = find_layer_groups(model)
    num_features = int(getattr(model, "head_hidden_size", None) or model.num_features)
    data_config = DataConfig(
        input_size=int(cfg["input_size"][-1]), mean=mean, std=std, interpolation=str(cfg["interpolation"])
    )
    backbone = ModelBackbone(f"timm:{arch}", model, num_features, data_config, groups)
    backbone.set_source_head(source_head(state_dict, head))
    return backbone
