"""Options shared by several commands, turned into API objects."""

from __future__ import annotations

from typing import Any

from transferkit.api import Data, load_data
from transferkit.backbones import ModelBackbone, create_backbone
from transferkit.engine.config import TrainConfig

TRAIN_FIELDS = set(TrainConfig.__dataclass_fields__)


def backbone_and_data(p: dict[str, Any]) -> tuple[ModelBackbone, Data]:
    import torch

    torch.manual_seed(p["seed"])  # a randomly initialised backbone (--weights none) is then reproducible
    bb = create_backbone(p["backbone"], weights=p["weights"])
    data = load_data(
        p["data"],
        bb.data_config,
        preset=p["preset"],
        auto_augment=p.get("auto_augment", "none"),
        normalize=p.get("normalize"),
        image_size=p.get("image_size"),
        val_fraction=p["val_fraction"],
        seed=p["seed"],
        on_bad_image=p.get("on_bad_image", "skip"),
        max_pixels=p.get("max_pixels") or 89_478_485,
    )
    return bb, data


def train_config(p: dict[str, Any]) -> TrainConfig:
    values = {k: v for k, v in p.items() if k in TRAIN_FIELDS and v is not None}
    return TrainConfig(**values)


def parse_key_values(text: str | dict[str, Any] | None) -> dict[str, Any]:
    """``"r=4,alpha=8,target=qkv"`` → ``{"r": 4, "alpha": 8, "target": "qkv"}`` (values read as YAML scalars)."""
    import yaml

    from transferkit.errors import ConfigError

    if not text:
        return {}
    if isinstance(text, dict):
        return text
    result = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"Expected key=value pairs separated by commas, got {item!r} in {text!r}.")
        result[key.strip()] = yaml.safe_load(value.strip())
    return result
