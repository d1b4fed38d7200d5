"""Training and scoring a detector through the one training loop.

The loss is the detector's own (torchvision: RPN objectness and box regression + ROI classification
and box regression for Faster R-CNN; focal loss + box regression for RetinaNet). Metrics: COCO mAP
over IoU .50:.95 and mAP at IoU .50 (torchmetrics' ``MeanAveragePrecision``, pycocotools backend);
the best epoch is the one with the highest validation mAP@.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from transferkit.data.sampler import EpochSampler
from transferkit.detection.data import DetectionData, collate
from transferkit.detection.model import DetectionModel
from transferkit.engine.config import TrainConfig
from transferkit.engine.optim import PER_STEP, build_optimizer, build_scheduler, param_groups
from transferkit.engine.staged import StrategyTask, train_task
from transferkit.engine.trainer import StepOutput, Trainer
from transferkit.seeding import derive_seed
from transferkit.strategies.base import Strategy
from transferkit.strategies.freezing import apply_bn_policy


@dataclass
class DetectionResult:
    model: DetectionModel
    history: list[dict[str, Any]]
    best_epoch: int
    metrics: dict[str, Any]
    run_dir: Path | None = None
    train_seconds: float = 0.0


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
    predictions, targets = [], []
    with torch.inference_mode():
        for images, batch_targets in batches:
            out = model(list(images))
            predictions += [{k: v.cpu() for k, v in p.items()} for p in out]
            targets += [{k: v.cpu() for k, v in t.items()} for t in batch_targets]
    return predictions, targets


class DetectionTask(StrategyTask):
    """The detector's summed losses on (images, targets) batches; stages and freezing from a strategy."""

    name = "detect"

    def __init__(self, model: DetectionModel, strategy: Strategy, data: DetectionData, config: TrainConfig,
                 fabric: Any) -> None:  # fmt: skip
        self.raw, self.strategy, self.data, self.config, self.fabric = model, strategy, data, config, fabric
        self.groups = model.layer_groups()
        self.stages = strategy.stages(config.epochs, len(self.groups))
        model.to(fabric.device)
        self.scheduler: Any = None
        self.last: dict[str, Any] = {}

    def enter_stage(self, trainer: Trainer, index: int) -> None:
        stage = self.unfreeze_for(index)
        optimizer = build_optimizer(param_groups(self.groups, self.raw.head, stage, self.config), self.config)
        steps = math.ceil(len(self.data.train) / self.config.batch_size)
        self.scheduler = build_scheduler(optimizer, self.config, stage.end - stage.start, steps)
        self.module, self.optimizer = trainer.setup(self.raw, optimizer)

    def _loader(self, dataset: Dataset, epoch: int, shuffle: bool) -> DataLoader:
        sampler = EpochSampler(len(dataset), self.config.seed, shuffle, epoch=epoch, rank=self.fabric.global_rank,
                               world_size=self.fabric.world_size)  # fmt: skip
        generator = torch.Generator().manual_seed(derive_seed(self.config.seed, epoch, "loader"))
        return DataLoader(dataset, batch_size=self.config.batch_size, sampler=sampler, collate_fn=collate,
                          num_workers=self.config.num_workers, generator=generator)  # fmt: skip

    def batches(self, epoch: int) -> Any:
        self.module.train()
        apply_bn_policy(self.groups, self.config.train_bn, self.raw.net.backbone.body)
        device = self.fabric.device
        for images, targets in self._loader(self.data.train, epoch, shuffle=True):
            yield [i.to(device) for i in images], [{k: v.to(device) for k, v in t.items()} for t in targets]

    def training_step(self, batch: tuple[list[Tensor], list[dict[str, Tensor]]]) -> StepOutput:
        images, targets = batch
        losses = self.module(images, targets)
        return StepOutput(sum(losses.values()), len(images))

    def after_step(self) -> None:
        if self.scheduler is not None and self.config.scheduler in PER_STEP:
            self.scheduler.step()

    def validate(self, epoch: int) -> dict[str, Any]:
        predictions, targets = predict_boxes(self.raw, self._loader(self.data.val, 0, shuffle=False))
        self.last = detection_metrics(predictions, targets)
        if self.scheduler is not None and self.config.scheduler not in PER_STEP + ("plateau",):
            self.scheduler.step()
        return {"val_map": round(self.last["map"], 6), "val_map50": round(self.last["map_50"], 6)}

    def weights(self) -> dict[str, Tensor]:
        return self.raw.state_dict()

    def load_weights(self, weights: dict[str, Tensor]) -> None:  # also before the first stage (resume)
        self.raw.load_state_dict(weights)

    def checkpoint(self) -> dict[str, Any]:
        scheduler = self.scheduler.state_dict() if self.scheduler is not None else None
        return {"state_dict": self.raw.state_dict(), "optimizer": self.optimizer.state_dict(), "scheduler": scheduler}

    def restore(self, payload: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler is not None and payload.get("scheduler") is not None:
            self.scheduler.load_state_dict(payload["scheduler"])

    def details(self) -> dict[str, Any]:
        return {"classes": self.data.classes, **self.last}

    def spec(self) -> dict[str, Any]:
        return self.raw.spec()


def fit_detector(
    model: DetectionModel,
    data: DetectionData,
    strategy: str | Strategy = "fine-tune",
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    log=print,
) -> DetectionResult:
    """Train ``model`` on ``data``; the epoch with the best validation mAP@.5 is kept (and saved in ``out``)."""
    from transferkit.engine.distributed import local_fabric
    from transferkit.strategies import create_strategy

    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    strat = create_strategy(strategy) if isinstance(strategy, str) else strategy
    fabric = local_fabric("cpu" if config.accelerator == "cpu" or not torch.cuda.is_available() else "cuda")
    task = DetectionTask(model, strat, data, config, fabric)
    run_dir = Path(out) if out is not None else None
    state = train_task(task, config, fabric, "val_map50", run_dir, resume, log)
    best = next(r for r in state.history if r["epoch"] == state.best_epoch)
    metrics = {"val_map": best["val_map"], "val_map50": best["val_map50"]}
    return DetectionResult(model, state.history, state.best_epoch, metrics, run_dir, state.train_seconds)


def evaluate_detector(model: DetectionModel, dataset: Dataset, batch_size: int = 8) -> dict[str, float]:
    """COCO mAP@[.5:.95] and mAP@.5 of ``model`` on ``dataset``."""
    return detection_metrics(*predict_boxes(model, DataLoader(dataset, batch_size=batch_size, collate_fn=collate)))
