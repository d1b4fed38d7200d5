"""A segmentation-models-pytorch network whose encoder is a transferkit backbone.

The encoder is smp's timm-universal encoder (``tu-<timm name>``) created without weights; the
backbone's weights — the same offline ImageNet weights classification uses — are then copied
into it by parameter name, and every encoder parameter must receive one (an error otherwise).
The backbone's layer groups are rebuilt over the encoder's parameters with the same names, so
freezing, partial fine-tuning, discriminative learning rates and progressive unfreezing apply
unchanged; the decoder and segmentation head play the classifier head's part.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from transferkit.backbones.base import DataConfig, ModelBackbone
from transferkit.backbones.encoder import EncoderModel, copy_weights, groups_over, spec_for, timm_name
from transferkit.errors import ConfigError

ARCHITECTURES = {"unet": "Unet", "fpn": "FPN", "deeplabv3plus": "DeepLabV3Plus"}


class SegmentationModel(EncoderModel):
    """``forward(images (N, 3, H, W)) -> logits (N, K, H, W)``; H and W multiples of 32."""

    @property
    def encoder(self) -> nn.Module:
        return self.net.encoder.model

    @property
    def head(self) -> nn.Module:
        """Everything outside the encoder: decoder and segmentation head (always trained)."""
        return nn.ModuleList([m for name, m in self.net.named_children() if name != "encoder"])

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)


def _smp():
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        raise ConfigError("Segmentation needs segmentation-models-pytorch: pip install 'transferkit[dense]'.") from None
    return smp


def build_segmenter(
    backbone: str | ModelBackbone = "efficientnet_lite0",
    classes: list[str] | int = 2,
    arch: str = "unet",
    weights: str | Path | None = "imagenet",
    data_config: DataConfig | None = None,
) -> SegmentationModel:
    """``arch`` (unet, fpn, deeplabv3plus) over a transferkit backbone: a name (built with ``weights``) or a
    built :class:`ModelBackbone` (its weights are copied). ``data_config``: the input size and normalisation
    the model is trained at (default: the backbone's)."""
    from transferkit.backbones import create_backbone

    if arch not in ARCHITECTURES:
        raise ConfigError(f"No segmentation architecture {arch!r}. Available: {', '.join(ARCHITECTURES)}.")
    classes = [str(i) for i in range(classes)] if isinstance(classes, int) else list(classes)
    source = create_backbone(backbone, weights=weights) if isinstance(backbone, str) else backbone
    net = getattr(_smp(), ARCHITECTURES[arch])(
        encoder_name=f"tu-{timm_name(source)}", encoder_weights=None, classes=len(classes)
    )
    copy_weights(source, net.encoder.model)
    groups = groups_over(source, net.encoder.model)
    spec = spec_for("segment", source, arch, classes, data_config or source.data_config)
    return SegmentationModel(net, groups, spec)


def _spec(payload: Any) -> dict[str, Any] | None:
    spec = payload.get("spec") if isinstance(payload, dict) else None
    return spec if isinstance(spec, dict) else None


def is_segmentation_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint of :func:`fit_segmenter` (read with ``weights_only=True``)."""
    try:
        spec = _spec(torch.load(path, map_location="cpu", weights_only=True))
    except Exception:  # noqa: BLE001 - not a readable checkpoint: the caller's loader says why
        return False
    return bool(spec) and spec.get("task") == "segment"


def load_segmenter(path: str | Path) -> SegmentationModel:
    """A segmentation model saved by ``fit_segmenter`` (``best.pt``), loaded with ``weights_only=True``."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    spec = _spec(payload)
    if not spec or spec.get("task") != "segment":
        raise ConfigError(f"{path} is not a transferkit segmentation checkpoint (no segment model spec in it).")
    dc = spec["data_config"]
    data_config = DataConfig(dc["input_size"], tuple(dc["mean"]), tuple(dc["std"]), dc["interpolation"])
    model = build_segmenter(spec["backbone"], spec["classes"], spec["arch"], weights=None, data_config=data_config)
    model.load_state_dict(payload["state_dict"])
    return model.eval()
