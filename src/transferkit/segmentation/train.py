"""Training and scoring a segmentation model through the one training loop.

Loss: class-weighted cross-entropy (weights ∝ 1 / √pixel frequency, mean 1, from the training
masks) plus multiclass soft Dice (segmentation-models-pytorch's ``DiceLoss``); 255 is ignored.
Metrics: per-class IoU (Jaccard) and Dice (F1 over pixels) by torchmetrics, their means as
``val_miou`` and ``val_dice``; the best epoch is the one with the highest ``val_miou``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from transferkit.engine.config import TrainConfig
from transferkit.engine.staged import DenseResult, DenseTask, fit_dense
from transferkit.engine.trainer import StepOutput
from transferkit.segmentation.data import IGNORE, SegmentationData
from transferkit.segmentation.model import SegmentationModel
from transferkit.strategies.base import Strategy

SegmentationConfig = TrainConfig  # the same optimisation options; the monitor is val_miou


SegmentationResult = DenseResult


def class_weights(pixel_counts: np.ndarray) -> Tensor:
    """∝ 1/√frequency, mean 1 over the classes present; absent classes get weight 1."""
    counts = np.asarray(pixel_counts, dtype=np.float64)
    present = counts > 0
    weights = np.ones_like(counts)
    weights[present] = 1.0 / np.sqrt(counts[present] / counts[present].sum())
    weights[present] /= weights[present].mean()
    return torch.as_tensor(weights, dtype=torch.float32)


def segmentation_metrics(preds: Tensor, masks: Tensor, num_classes: int) -> dict[str, Any]:
    """Per-class IoU and Dice of predicted class ids against ``masks`` over every pixel (255 ignored), and
    their means over the classes."""
    from torchmetrics.functional.classification import multiclass_f1_score, multiclass_jaccard_index

    kwargs = {"num_classes": num_classes, "average": "none", "ignore_index": IGNORE}
    iou = multiclass_jaccard_index(preds, masks, **kwargs)
    dice = multiclass_f1_score(preds, masks, multidim_average="global", **kwargs)
    return {"miou": float(iou.mean()), "dice": float(dice.mean()), "iou": iou.tolist(), "dice_per_class": dice.tolist()}


class SegmentationTask(DenseTask):
    """Dense cross-entropy + Dice on (image, mask) batches; stages and freezing from a strategy."""

    name = "segment"

    def __init__(self, model: SegmentationModel, strategy: Strategy, data: SegmentationData, config: TrainConfig,
                 fabric: Any) -> None:  # fmt: skip
        from segmentation_models_pytorch.losses import DiceLoss

        self.attach(model, strategy, data, config, fabric)
        weight = class_weights(data.pixel_counts()).to(fabric.device)
        self.ce = nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE)
        self.dice = DiceLoss("multiclass", ignore_index=IGNORE)

    def _batches(self, dataset: Dataset, epoch: int, shuffle: bool) -> DataLoader:
        return self.fabric.setup_dataloaders(self.loader(dataset, epoch, shuffle), use_distributed_sampler=False)

    def batches(self, epoch: int) -> DataLoader:
        self.train_mode()
        return self._batches(self.data.train, epoch, shuffle=True)

    def training_step(self, batch: tuple[Tensor, Tensor]) -> StepOutput:
        images, masks = batch
        logits = self.module(images)
        return StepOutput(self.ce(logits, masks) + self.dice(logits, masks), len(images))

    def validate(self, epoch: int) -> dict[str, Any]:
        batches = self._batches(self.data.val, 0, shuffle=False)
        loss, self.last = score(self.module, batches, len(self.data.classes), self.ce)
        self.step_epoch_scheduler(self.last["miou"])
        miou, dice = round(self.last["miou"], 6), round(self.last["dice"], 6)
        return {"val_loss": round(loss, 6), "val_miou": miou, "val_dice": dice}


def score(model: nn.Module, batches: Any, num_classes: int, criterion: nn.Module | None = None) -> tuple[float, dict]:
    """(mean loss, metrics) of ``model`` over ``batches`` of (images, masks); pixels are pooled over images."""
    model.eval()
    preds_all, masks_all, losses = [], [], []
    with torch.inference_mode():
        for images, masks in batches:
            logits = model(images)
            if criterion is not None:
                losses.append(float(criterion(logits, masks)) * len(images))
            preds_all.append(logits.argmax(1).cpu())
            masks_all.append(masks.cpu())
    metrics = segmentation_metrics(torch.cat(preds_all), torch.cat(masks_all), num_classes)
    return (sum(losses) / len(masks) if losses else float("nan")), metrics


def fit_segmenter(
    model: SegmentationModel,
    data: SegmentationData,
    strategy: str | Strategy = "fine-tune",
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    log=print,
) -> SegmentationResult:
    """Train ``model`` on ``data``; the epoch with the best ``val_miou`` is kept (and saved in ``out``). A test
    split is scored once after selection (``test_metrics``). The run report: :func:`transferkit.report.dense_report`
    (``segment fit`` writes it)."""
    from transferkit.engine.distributed import make_fabric

    config = config or TrainConfig()
    fabric = make_fabric(config)
    return fit_dense(SegmentationTask, model, data, strategy, config, fabric, "val_miou", out, resume, log,
                     evaluate_segmenter)  # fmt: skip


def evaluate_segmenter(model: SegmentationModel, dataset: Dataset, batch_size: int = 8) -> dict[str, Any]:
    """Per-class IoU and Dice of ``model`` on ``dataset`` (eval transform), and their means."""
    loader = DataLoader(dataset, batch_size=batch_size)
    device = next(model.parameters()).device
    batches = ((images.to(device), masks.to(device)) for images, masks in loader)
    return score(model, batches, len(model.classes))[1]
