"""A backbone and a head as one module, and how it is saved and loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from transferkit.backbones import DataConfig, ModelBackbone, create_backbone
from transferkit.engine.checkpoint import atomic_save, load_checkpoint
from transferkit.heads import create_head


class TransferModel(nn.Module):
    """``head(backbone.forward_features(images))``.

    ``forward(features, from_features=True)`` runs the head alone on cached features and
    ``forward(maps, from_split=k)`` the network above its first ``k`` layer groups on cached
    outputs of those groups; both go through ``forward`` so distributed wrappers see the call.
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

    def forward(self, inputs: Tensor, from_features: bool = False, from_split: int | None = None) -> Tensor:
        if from_features:
            features = inputs
        elif from_split is not None:
            split = self.backbone.split(from_split)
            if split is None:
                raise ValueError(f"{self.backbone.name} cannot be cut after layer group {from_split}.")
            features = split.top(inputs)
        else:
            features = self.backbone.forward_features(inputs)
        return self.head(features)

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild the architecture (plain types only)."""
        dc = self.data_config
        return {
            "backbone": self.backbone.name,
            "head": self.head_spec,
            "classes": self.classes,
            "data_config": {
                "input_size": dc.input_size,
                "mean": list(dc.mean),
                "std": list(dc.std),
                "interpolation": dc.interpolation,
            },
            "peft": [dict(p) for p in self.peft],
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
    **head_kwargs: Any,
) -> TransferModel:
    """Backbone by name (or instance) + a new head for ``num_classes`` classes."""
    bb = create_backbone(backbone, weights=weights) if isinstance(backbone, str) else backbone
    spec = {"name": head, **head_kwargs}
    return TransferModel(
        bb,
        create_head(head, bb.num_features, num_classes, **head_kwargs),
        classes or [str(i) for i in range(num_classes)],
        spec,
        data_config,
    )


def load_model(path: str | Path) -> TransferModel:
    """Rebuild a saved model (a ``fit`` run's ``best.pt``/``last.pt`` or ``model.pt``) without pickle."""
    payload = load_checkpoint(path)
    spec = payload["spec"]
    head = dict(spec["head"])
    dc = DataConfig(
        int(spec["data_config"]["input_size"]),
        tuple(spec["data_config"]["mean"]),
        tuple(spec["data_config"]["std"]),
        spec["data_config"]["interpolation"],
    )
    model = build_model(
        spec["backbone"], len(spec["classes"]), spec["classes"], head.pop("name"), weights=None, data_config=dc, **head
    )
    if spec.get("peft"):
        from transferkit.peft import apply_peft

        for method in spec["peft"]:
            options = dict(method)
            apply_peft(model, options.pop("name"), **options)
    model.load_state_dict(payload["state_dict"] if "state_dict" in payload else payload["model"])
    return model.eval()
