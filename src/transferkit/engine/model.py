"""A backbone and a head as one module, and how it is saved and loaded."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from transferkit.backbones import DataConfig, ModelBackbone, create_backbone
from transferkit.data.transforms import tta_views
from transferkit.engine.checkpoint import atomic_save, load_checkpoint
from transferkit.errors import ConfigError
from transferkit.heads import create_head


def device_of(module: nn.Module) -> torch.device:
    """Where ``module`` lives: its first parameter's or buffer's device (CPU for a module with neither)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


class TransferModel(nn.Module):
    """``head(backbone.forward_features(images))``.

    ``forward(features, from_features=True)`` runs the head alone on cached features and
    ``forward(maps, from_split=k)`` the network above its first ``k`` layer groups on cached
    outputs of those groups; both go through ``forward`` so distributed wrappers see the call.

    ``tta`` (``"none"``, ``"flip"``, ``"dihedral"``): in eval mode, images are classified under each
    test-time view and the class probabilities averaged; the output is then their log, so
    ``softmax`` of it gives the averaged probabilities. Saved in the spec, so ``predict``,
    ``serve`` and ``export`` apply it too.
    """

    def __init__(
        self,
        backbone: ModelBackbone,
        head: nn.Module,
        classes: list[str],
        head_spec: dict[str, Any],
        data_config: DataConfig | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.classes = list(classes)
        self.head_spec = dict(head_spec)
        self.data_config = data_config or backbone.data_config
        self.peft: list[dict[str, Any]] = []  # PEFT methods applied, in order (see transferkit.peft)
        self.tta = "none"

    def forward(self, inputs: Tensor, from_features: bool = False, from_split: int | None = None) -> Tensor:
        if from_features:
            features = inputs
        elif from_split is not None:
            split = self.backbone.split(from_split)
            if split is None:
                raise ValueError(f"{self.backbone.name} cannot be cut after layer group {from_split}.")
            features = split.top(inputs)
        elif self.tta != "none" and not self.training:
            views = tta_views(inputs, self.tta)
            probs = torch.stack([self.head(self.backbone.forward_features(v)).float().softmax(1) for v in views])
            return probs.mean(0).clamp_min(1e-12).log()
        else:
            features = self.backbone.forward_features(inputs)
        return self.head(features)

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild the architecture (plain types only)."""
        dc = self.data_config
        return {
            "backbone": self.backbone.name,
            "layers": list(getattr(self.backbone, "layers", None) or []),
            "head": self.head_spec,
            "classes": self.classes,
            "data_config": {
                "input_size": dc.input_size,
                "mean": list(dc.mean),
                "std": list(dc.std),
                "interpolation": dc.interpolation,
            },
            "peft": [dict(p) for p in self.peft],
            "tta": self.tta,
        }

    def save(self, path: str | Path) -> None:
        atomic_save({"spec": self.spec(), "state_dict": self.state_dict()}, path)


def build_model(
    backbone: str | ModelBackbone,
    num_classes: int,
    classes: list[str] | None = None,
    head: str = "linear",
    weights: str | Path | None = "imagenet",
    data_config: DataConfig | None = None,
    layers: Sequence[str] | None = None,
    **head_kwargs: Any,
) -> TransferModel:
    """Backbone by name (or instance) + a new head for ``num_classes`` classes.

    ``layers``: layer-group names whose pooled outputs are concatenated into the features
    (see :class:`~transferkit.backbones.multi_depth.MultiDepthBackbone`); default: the last only.
    """
    if classes is not None and len(classes) != num_classes:
        raise ConfigError(f"build_model got num_classes={num_classes} but {len(classes)} class names: {classes}.")
    if isinstance(backbone, str):
        extra = {"image_size": data_config.input_size} if backbone.startswith("classical:") and data_config else {}
        bb = create_backbone(backbone, weights=weights, **extra)
    else:
        bb = backbone
    if layers and list(layers) != list(getattr(bb, "layers", [])):
        from transferkit.backbones.multi_depth import MultiDepthBackbone

        bb = MultiDepthBackbone(bb, layers)
    spec = {"name": head, **head_kwargs}
    return TransferModel(
        bb,
        create_head(head, bb.num_features, num_classes, **head_kwargs),
        classes or [str(i) for i in range(num_classes)],
        spec,
        data_config,
    )


def model_from_spec(spec: dict[str, Any], backbone: ModelBackbone | None = None) -> nn.Module:
    """An untrained model with the architecture a spec describes (weights to be loaded).

    ``backbone``: an instance to copy where the spec names it (for backbones not known by name).
    """
    if spec.get("kind") == "ensemble":
        from transferkit.engine.ensemble import EnsembleModel

        return EnsembleModel([model_from_spec(m, backbone) for m in spec["members"]], spec["weights"])
    head = dict(spec["head"])
    dc = spec["data_config"]
    config = DataConfig(int(dc["input_size"]), tuple(dc["mean"]), tuple(dc["std"]), dc["interpolation"])
    same = backbone is not None and backbone.name == spec["backbone"]
    model = build_model(
        copy.deepcopy(backbone) if same else spec["backbone"],
        len(spec["classes"]),
        spec["classes"],
        head.pop("name"),
        weights=None,
        data_config=config,
        layers=spec.get("layers") or None,
        **head,
    )
    if spec.get("peft"):
        from transferkit.peft import apply_peft

        for method in spec["peft"]:
            options = dict(method)
            apply_peft(model, options.pop("name"), **options)
    model.tta = spec.get("tta", "none")
    return model


def load_model(path: str | Path, backbone: ModelBackbone | None = None) -> TransferModel:
    """Rebuild a saved model (a run's ``best.pt``/``last.pt``, ``model.pt``, an ensemble) without pickle.

    ``backbone``: an instance to rebuild from when the spec names it (see :func:`model_from_spec`).
    """
    payload = load_checkpoint(path)
    _check_classifier(path, payload)
    model = model_from_spec(payload["spec"], backbone)
    model.load_state_dict(payload["state_dict"] if "state_dict" in payload else payload["model"])
    return model.eval()


OTHER_TASKS = {  # a checkpoint's spec["task"] → the commands that read it
    "anomaly": "transferkit anomaly evaluate|predict",
    "detect": "transferkit detect evaluate|predict",
    "segment": "transferkit segment evaluate|predict (and export)",
}


def _check_classifier(path: str | Path, payload: Any) -> None:
    """A ConfigError naming the file and the right command when ``payload`` is not a classifier's checkpoint."""
    spec = payload.get("spec") if isinstance(payload, dict) else None
    if not isinstance(spec, dict):
        raise ConfigError(f"{path} is not a transferkit checkpoint (no model spec in it): give a run's best.pt.")
    task = spec.get("task")
    if task in OTHER_TASKS:
        raise ConfigError(f"{path} is a transferkit {task} model, not a classifier: use {OTHER_TASKS[task]}.")
    if spec.get("kind") != "ensemble" and "head" not in spec:
        raise ConfigError(
            f"{path} holds no classifier spec (keys: {sorted(spec)}): give a classification run's best.pt."
        )
