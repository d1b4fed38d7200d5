"""Training and scoring a detector through the one training loop.

The loss is the detector's own (torchvision: RPN objectness and box regression + ROI classification
and box regression for Faster R-CNN; focal loss + box regression for RetinaNet). Metrics: COCO mAP
over IoU .50:.95 and mAP at IoU .50 (torchmetrics' ``MeanAveragePrecision``, pycocotools backend);
the best epoch is the one with the highest validation mAP@.5.
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
from transferkit.strategies.base import Strategy

DetectionResult = DenseResult


def detection_metrics(predictions: list[dict[str, Tensor]], targets: list[dict[str, Tensor]]) -> dict[str, float]:
    """COCO mAP@[.5:.95] and mAP@.5 of ``predictions`` against ``targets`` (boxes xyxy, labels)."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox")
    metric.update(predictions, targets)
    result = metric.compute()
    return {"map": float(result["map"]), "map_50": float(result["map_50"])}


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
        self.step_epoch_scheduler(self.last["map_50"])
        return {"val_map": round(self.last["map"], 6), "val_map50": round(self.last["map_50"], 6)}


def fit_detector(
    model: DetectionModel,
    data: DetectionData,
    strategy: str | Strategy = "fine-tune",
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    log=print,
) -> DetectionResult:
    """Train ``model`` on ``data``; the epoch with the best validation mAP@.5 is kept (and saved in ``out``).
    One process (torchvision's detectors take lists of images; DDP for them is not built)."""
    from transferkit.engine.distributed import local_fabric

    config = config or TrainConfig()
    fabric = local_fabric("cpu" if config.accelerator == "cpu" or not torch.cuda.is_available() else "cuda")
    return fit_dense(DetectionTask, model, data, strategy, config, fabric, "val_map50", out, resume, log)


def evaluate_detector(model: DetectionModel, dataset: Dataset, batch_size: int = 8) -> dict[str, float]:
    """COCO mAP@[.5:.95] and mAP@.5 of ``model`` on ``dataset``."""
    return detection_metrics(*predict_boxes(model, DataLoader(dataset, batch_size=batch_size, collate_fn=collate)))
