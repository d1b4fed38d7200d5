"""Training and scoring a detector through the one training loop.

The loss is the detector's own (torchvision: RPN objectness and box regression + ROI classification
and box regression for Faster R-CNN, + per-pixel mask loss for Mask R-CNN; focal loss + box
regression for RetinaNet; focal + GIoU + centre-ness for FCOS). Metrics: COCO mAP over IoU .50:.95
and mAP at IoU .50 (torchmetrics' ``MeanAveragePrecision``, pycocotools backend) of the boxes and,
for Mask R-CNN, of the masks (``mask_map``, ``mask_map_50``); for Keypoint R-CNN, PCK@0.1 and OKS
(:mod:`transferkit.detection.keypoints`). The best epoch is the one with the highest validation
mAP@.5 (of the masks for Mask R-CNN; PCK for Keypoint R-CNN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from transferkit.detection.data import DetectionData, collate
from transferkit.detection.model import DetectionModel
from transferkit.engine.config import TrainConfig
from transferkit.engine.staged import DenseResult, DenseTask, fit_dense
from transferkit.engine.trainer import StepOutput
from transferkit.errors import ConfigError
from transferkit.strategies.base import Strategy

DetectionResult = DenseResult


def detection_metrics(predictions: list[dict[str, Tensor]], targets: list[dict[str, Tensor]]) -> dict[str, float]:
    """COCO mAP@[.5:.95] and mAP@.5 of ``predictions`` against ``targets`` (boxes xyxy, labels); where
    both hold "masks" (predicted probabilities (n, 1, H, W) or (n, H, W), cut at 0.5), also of the masks;
    where both hold "keypoints", also PCK@0.1 and OKS (:mod:`transferkit.detection.keypoints`)."""
    from torchmetrics.detection import MeanAveragePrecision

    from transferkit.detection.keypoints import keypoint_metrics

    has = lambda key: bool(targets) and all(key in x for x in [*predictions, *targets])  # noqa: E731
    points = keypoint_metrics(predictions, targets) if has("keypoints") else {}
    predictions = [{k: v for k, v in p.items() if k != "keypoints"} for p in predictions]
    targets = [{k: v for k, v in t.items() if k != "keypoints"} for t in targets]

    masks = has("masks")
    metric = MeanAveragePrecision(box_format="xyxy", iou_type=("bbox", "segm") if masks else "bbox")
    if masks:
        predictions = [{**p, "masks": p["masks"].reshape(-1, *p["masks"].shape[-2:]) > 0.5} for p in predictions]
        targets = [{**t, "masks": t["masks"].bool()} for t in targets]
    metric.update(predictions, targets)
    result = metric.compute()
    if not masks:
        return {"map": float(result["map"]), "map_50": float(result["map_50"]), **points}
    return {"map": float(result["bbox_map"]), "map_50": float(result["bbox_map_50"]),
            "mask_map": float(result["segm_map"]), "mask_map_50": float(result["segm_map_50"]), **points}  # fmt: skip


def predict_boxes(model: DetectionModel, batches: Any) -> tuple[list[dict[str, Tensor]], list[dict[str, Tensor]]]:
    """(predictions, targets) over ``batches`` of (images, targets), on CPU."""
    model.eval()
    device = next(model.parameters()).device
    predictions, targets = [], []
    with torch.inference_mode():
        for images, batch_targets in batches:
            out = model([image.to(device) for image in images])
            predictions += [{k: v.cpu() for k, v in p.items()} for p in out]
            targets += [{k: v.cpu() for k, v in t.items()} for t in batch_targets]
    return predictions, targets


class DetectionTask(DenseTask):
    """The detector's summed losses on (images, targets) batches; stages and freezing from a strategy."""

    name = "detect"

    def __init__(self, model: DetectionModel, strategy: Strategy, data: DetectionData, config: TrainConfig,
                 fabric: Any) -> None:  # fmt: skip
        self.attach(model, strategy, data, config, fabric)

    def batches(self, epoch: int) -> Any:
        self.train_mode()
        device = self.fabric.device
        for images, targets in self.loader(self.data.train, epoch, shuffle=True, collate_fn=collate):
            yield [i.to(device) for i in images], [{k: v.to(device) for k, v in t.items()} for t in targets]

    def training_step(self, batch: tuple[list[Tensor], list[dict[str, Tensor]]]) -> StepOutput:
        images, targets = batch
        losses = self.module(images, targets)
        return StepOutput(sum(losses.values()), len(images))

    def validate(self, epoch: int) -> dict[str, Any]:
        batches = self.loader(self.data.val, 0, shuffle=False, collate_fn=collate)
        self.last = detection_metrics(*predict_boxes(self.raw, batches))
        names = {"map_50": "val_map50", "mask_map_50": "val_mask_map50"}  # the rest: val_ + the metric's name
        row = {names.get(key, f"val_{key}"): round(value, 6) for key, value in self.last.items()}
        self.step_epoch_scheduler(row[self.raw.monitor])
        return row


def fit_detector(
    model: DetectionModel,
    data: DetectionData,
    strategy: str | Strategy = "fine-tune",
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    log=print,
) -> DetectionResult:
    """Train ``model`` on ``data``; the epoch with the best validation mAP@.5 (of the masks for Mask R-CNN;
    PCK@0.1 for Keypoint R-CNN) is kept (and saved in ``out``). A test split is scored once after selection
    (``test_metrics``). The run report: :func:`transferkit.report.dense_report` (``detect fit`` writes it). One process
    (torchvision's detectors take lists of images; DDP for them is not built)."""
    from transferkit.engine.distributed import local_fabric

    if model.with_masks and not data.train.with_masks:
        raise ConfigError("A Mask R-CNN model needs instance masks: load the data with masks=True (COCO polygons/RLE).")
    if model.keypoint_names and len(model.keypoint_names) != data.train.keypoints:
        raise ConfigError(
            f"The model predicts {len(model.keypoint_names)} keypoints ({', '.join(model.keypoint_names)}); the data "
            f"holds {data.train.keypoints}. Load it with keypoints=True from a COCO file with those keypoint names."
        )
    config = config or TrainConfig()
    fabric = local_fabric("cpu" if config.accelerator == "cpu" or not torch.cuda.is_available() else "cuda")
    return fit_dense(DetectionTask, model, data, strategy, config, fabric, model.monitor, out, resume, log,
                     evaluate_detector)  # fmt: skip


def evaluate_detector(model: DetectionModel, dataset: Dataset, batch_size: int = 8) -> dict[str, float]:
    """COCO mAP@[.5:.95] and mAP@.5 of ``model`` on ``dataset``."""
    return detection_metrics(*predict_boxes(model, DataLoader(dataset, batch_size=batch_size, collate_fn=collate)))
