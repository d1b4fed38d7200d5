"""Object detection on a transferkit backbone: torchvision's Faster R-CNN, RetinaNet or FCOS, instance
segmentation with Mask R-CNN, or keypoints with Keypoint R-CNN, over a feature pyramid (torchvision's
``FeaturePyramidNetwork``) on the backbone's own stages.

The stages come from timm's ``features_only`` copy of the backbone's architecture (strides 8, 16,
32), filled with the backbone's weights by name (:mod:`transferkit.backbones.encoder`) — the same
offline ImageNet weights classification uses — and its layer groups are rebuilt over it, so the
strategies freeze and schedule it as they do for classifiers. The FPN and the detection heads are
the "head": always trained, from scratch. Anchors are sized for small images (16–128 px objects).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from transferkit.backbones.base import DataConfig, ModelBackbone
from transferkit.backbones.encoder import EncoderModel, copy_weights, groups_over, spec_for, timm_name
from transferkit.errors import ConfigError

ARCHITECTURES = ("fasterrcnn", "retinanet", "fcos", "maskrcnn", "keypointrcnn")
LEVELS = (2, 3, 4)  # timm feature indices of strides 8, 16, 32


class Pyramid(nn.Module):
    """timm ``features_only`` stages → FPN maps ``"0" "1" "2"`` (+ ``"pool"``), ``out_channels`` each."""

    def __init__(self, body: nn.Module, out_channels: int = 128) -> None:
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(body.feature_info.channels(), out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(self.body(images))))


class DetectionModel(EncoderModel):
    """``forward(images, targets=None)`` as torchvision's detectors: lists of (3, H, W) images in [0, 1];
    losses in training mode, ``[{"boxes", "labels", "scores"}]`` in eval mode (labels 1…K = ``classes``;
    Mask R-CNN adds "masks" (n, 1, H, W) probabilities, Keypoint R-CNN "keypoints" (n, K, 3))."""

    @property
    def with_masks(self) -> bool:
        return self._spec.get("arch") == "maskrcnn"

    @property
    def keypoint_names(self) -> list[str]:
        return list(self._spec.get("keypoints") or [])

    @property
    def monitor(self) -> str:
        """The validation metric that picks the best epoch."""
        return {"maskrcnn": "val_mask_map50", "keypointrcnn": "val_pck"}.get(self._spec["arch"], "val_map50")

    @property
    def encoder(self) -> nn.Module:
        return self.net.backbone.body

    @property
    def head(self) -> nn.Module:
        """Everything but the backbone's stages: FPN, RPN/ROI or RetinaNet heads (always trained)."""
        body = {id(p) for p in self.encoder.parameters()}
        holder = nn.Module()
        holder.params = nn.ParameterList([p for p in self.net.parameters() if id(p) not in body])
        return holder

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None) -> Any:
        return self.net(images, targets)


def _detector(arch: str, pyramid: Pyramid, num_classes: int, size: int, dc: DataConfig, keypoints: int) -> nn.Module:
    from torchvision.models.detection import FasterRCNN, KeypointRCNN, MaskRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    sizes = ((16,), (32,), (64,), (128,))  # one per pyramid level: strides 8, 16, 32 and the pooled one
    common = {"min_size": size, "max_size": size, "image_mean": list(dc.mean), "image_std": list(dc.std)}
    if arch in ("fasterrcnn", "maskrcnn", "keypointrcnn"):
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead

        anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
        pool = MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2)
        # sized for small images with a few objects each: torchvision's defaults (2,000 proposals, 512 ROIs
        # per image, a 1024-wide box head of 7.4 M parameters) made an epoch of 100 images at 128 px take
        # 38 s on 2 CPU cores
        head = TwoMLPHead(pyramid.out_channels * 7 * 7, 256)
        options = dict(
            rpn_anchor_generator=anchors, box_roi_pool=pool, box_head=head,
            box_predictor=FastRCNNPredictor(256, num_classes + 1), rpn_pre_nms_top_n_train=600,
            rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=150,
            box_batch_size_per_image=128, **common,
        )  # fmt: skip
        if arch == "fasterrcnn":
            return FasterRCNN(pyramid, None, **options)
        if arch == "keypointrcnn":
            return KeypointRCNN(pyramid, None, **_keypoint_head(pyramid.out_channels, keypoints), **options)
        return MaskRCNN(pyramid, None, **_mask_head(pyramid.out_channels, num_classes), **options)
    if arch == "fcos":
        from torchvision.models.detection import FCOS

        return FCOS(pyramid, num_classes + 1, anchor_generator=AnchorGenerator(sizes, ((1.0,),) * 4), **common)
    anchors = AnchorGenerator(tuple((s, int(s * 1.26), int(s * 1.59)) for (s,) in sizes), ((0.5, 1.0, 2.0),) * 4)
    return RetinaNet(pyramid, num_classes + 1, anchor_generator=anchors, **common)


def _mask_head(channels: int, num_classes: int) -> dict[str, nn.Module]:
    """Mask R-CNN's mask branch at half torchvision's width (two 128-wide convolutions instead of four
    256-wide ones): 14×14 ROIs upsampled to 28×28 masks, one per class."""
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    return {
        "mask_roi_pool": MultiScaleRoIAlign(["0", "1", "2"], output_size=14, sampling_ratio=2),
        "mask_head": MaskRCNNHeads(channels, [128, 128], 1),
        "mask_predictor": MaskRCNNPredictor(128, 128, num_classes + 1),
    }


def _keypoint_head(channels: int, keypoints: int) -> dict[str, nn.Module]:
    """Keypoint R-CNN's branch, slimmed like the mask one (two 128-wide convolutions instead of eight
    512-wide ones): 14×14 ROIs, one heatmap per keypoint."""
    from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    if keypoints < 1:
        raise ConfigError("keypointrcnn needs keypoint names (the 'keypoints' of the COCO categories).")
    return {
        "keypoint_roi_pool": MultiScaleRoIAlign(["0", "1", "2"], output_size=14, sampling_ratio=2),
        "keypoint_head": KeypointRCNNHeads(channels, [128, 128]),
        "keypoint_predictor": KeypointRCNNPredictor(128, keypoints),
    }


def build_detector(
    backbone: str | ModelBackbone = "efficientnet_lite0",
    classes: list[str] | int = 1,
    arch: str = "fasterrcnn",
    weights: str | Path | None = "imagenet",
    image_size: int = 128,
    keypoints: list[str] | None = None,
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> DetectionModel:
    """``arch`` (fasterrcnn, retinanet, fcos, maskrcnn, keypointrcnn: with ``keypoints`` names) over a
    transferkit backbone (a name built with ``weights``, or built). ``normalize``: (mean, std) of the
    input (default: the backbone's — they differ between pretrained weights and a random init, so a saved
    model is rebuilt with the ones it was trained with)."""
    import timm

    from transferkit.backbones import create_backbone

    if arch not in ARCHITECTURES:
        raise ConfigError(f"No detection architecture {arch!r}. Available: {', '.join(ARCHITECTURES)}.")
    classes = [str(i + 1) for i in range(classes)] if isinstance(classes, int) else list(classes)
    source = create_backbone(backbone, weights=weights) if isinstance(backbone, str) else backbone
    body = timm.create_model(timm_name(source), pretrained=False, features_only=True, out_indices=LEVELS)
    copy_weights(source, body)
    mean, std = normalize or (source.data_config.mean, source.data_config.std)
    dc = DataConfig(image_size, tuple(mean), tuple(std), source.data_config.interpolation)
    names = list(keypoints or []) if arch == "keypointrcnn" else []
    net = _detector(arch, Pyramid(body), len(classes), image_size, dc, len(names))
    spec = spec_for("detect", source, arch, classes, dc) | ({"keypoints": names} if names else {})
    return DetectionModel(net, groups_over(source, body), spec)


def load_detector(path: str | Path) -> DetectionModel:
    """A detection model saved by ``fit_detector`` (``best.pt``), loaded with ``weights_only=True``."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    spec = payload.get("spec") if isinstance(payload, dict) else None
    if not isinstance(spec, dict) or spec.get("task") != "detect":
        raise ConfigError(f"{path} is not a transferkit detection checkpoint (no detect model spec in it).")
    dc = spec["data_config"]
    normalize = (dc["mean"], dc["std"])  # the trained model's, not a random init's (EfficientNet-Lite: 0.5, 0.5)
    model = build_detector(spec["backbone"], spec["classes"], spec["arch"], None, dc["input_size"],
                           spec.get("keypoints"), normalize)  # fmt: skip
    model.load_state_dict(payload["state_dict"])
    return model.eval()
