"""Learning-rate range test (Smith, 2017; fastai's ``lr_find``). https://arxiv.org/abs/1506.01186

The learning rate grows exponentially from ``start_lr`` to ``end_lr`` over ``num_steps``
mini-batches while the smoothed loss is recorded; the suggestion is the rate where the
loss falls fastest. The model's weights are restored afterwards.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from transferkit.engine.cache import extract_features
from transferkit.engine.config import TrainConfig, frozen_autocast_dtype
from transferkit.engine.distributed import make_fabric
from transferkit.engine.model import TransferModel
from transferkit.engine.optim import build_optimizer, param_groups
from transferkit.engine.trainer import StepOutput, Trainer, TrainingTask
from transferkit.errors import TrainingError
from transferkit.strategies.base import Strategy
from transferkit.strategies.freezing import apply_bn_policy, set_trainable


@dataclass(frozen=True)
class LRFinderResult:
    lrs: list[float]
    losses: list[float]
    suggestion: float

    def plot(self, path: str | Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses)
        ax.axvline(self.suggestion, color="red", ls="--", label=f"suggested lr {self.suggestion:.2e}")
        ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed loss", title="LR range test")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return Path(path)


def suggest_lr(lrs: list[float], losses: list[float]) -> float:
    """The rate of steepest descent of the loss, before its minimum; a tenth of the minimum's rate if too short.

    Raises:
        TrainingError: when no finite loss was recorded (the test diverged at once).
    """
    losses_a = np.asarray(losses, dtype=np.float64)
    if not len(losses_a) or not np.isfinite(losses_a).any():
        raise TrainingError(
            f"The learning-rate range test recorded no finite loss ({len(losses_a)} step(s)): it diverged at "
            "once. Lower the start rate (--start-lr), check the images and labels, or use --precision 32-true."
        )
    finite = np.isfinite(losses_a)
    lrs, losses_a = [lr for lr, ok in zip(lrs, finite) if ok], losses_a[finite]
    stop = int(losses_a.argmin())
    if stop < 3:
        return lrs[stop] / 10
    slopes = np.gradient(losses_a[: stop + 1], np.log(np.asarray(lrs[: stop + 1])))
    return float(lrs[int(slopes.argmin())])


class _Diverged(Exception):
    """Ends the range test: the smoothed loss is no longer finite or exploded."""


@dataclass(frozen=True)
class Sweep:
    """The range test's schedule: ``num_steps`` rates from ``start_lr`` to ``end_lr``, geometrically."""

    start_lr: float = 1e-7
    end_lr: float = 1.0
    num_steps: int = 100
    smoothing: float = 0.9
    diverge: float = 4.0

    def lr(self, step: int) -> float:
        return self.start_lr * (self.end_lr / self.start_lr) ** (step / max(1, self.num_steps - 1))


class LRRangeTask(TrainingTask):
    """The strategy's first stage, one optimizer step per batch at an exponentially growing rate."""

    name = "lr-find"

    def __init__(self, model: TransferModel, stage, train: Dataset, config: TrainConfig, cached: bool, sweep: Sweep):
        self.model, self.stage, self.train, self.config, self.cached, self.sweep = (
            model,
            stage,
            train,
            config,
            cached,
            sweep,
        )
        self.groups = model.backbone.layer_groups()
        in_groups = {id(p) for g in self.groups for p in g.parameters()}
        self.extra = [p for p in model.backbone.parameters() if id(p) not in in_groups]  # PEFT parameters
        self.criterion = nn.CrossEntropyLoss()
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.average, self.best = 0.0, math.inf

    def setup(self, trainer: Trainer) -> None:
        self.fabric = trainer.fabric
        groups = param_groups(self.groups, self.model.head, self.stage, self.config, self.extra)
        optimizer = build_optimizer(groups, self.config)
        self.base = [g["lr"] / self.config.lr for g in optimizer.param_groups]
        self.module, self.optimizer = trainer.setup(self.model, optimizer)

    def batches(self, epoch: int):
        """Batches of a shuffled loader, cycled until ``num_steps`` were taken."""
        self.module.train()
        apply_bn_policy(self.groups, self.config.train_bn)
        generator = torch.Generator().manual_seed(self.config.seed)
        loader = DataLoader(self.train, batch_size=self.config.batch_size, shuffle=True, generator=generator)
        step = 0
        while step < self.sweep.num_steps:
            for batch in loader:
                if step >= self.sweep.num_steps:
                    return
                yield batch
                step += 1

    def training_step(self, batch) -> StepOutput:
        step, lr = len(self.lrs), self.sweep.lr(len(self.lrs))
        for group, scale in zip(self.optimizer.param_groups, self.base):
            group["lr"] = lr * scale
        inputs, targets = self.fabric.to_device(batch)
        loss = self.criterion(self.module(inputs, from_features=self.cached).float(), targets)
        self.average = self.sweep.smoothing * self.average + (1 - self.sweep.smoothing) * loss.item()
        smoothed = self.average / (1 - self.sweep.smoothing ** (step + 1))
        if not math.isfinite(smoothed) or (step > 5 and smoothed > self.sweep.diverge * self.best):
            raise _Diverged
        self.best = min(self.best, smoothed)
        self.lrs.append(lr)
        self.losses.append(smoothed)
        return StepOutput(loss, len(targets))

    def validate(self, epoch: int) -> dict[str, float]:
        return {}


def lr_range_test(
    model: TransferModel,
    strategy: Strategy,
    train: Dataset,
    config: TrainConfig,
    start_lr: float = 1e-7,
    end_lr: float = 1.0,
    num_steps: int = 100,
    smoothing: float = 0.9,
    diverge: float = 4.0,
    cache_from: Dataset | None = None,
) -> LRFinderResult:
    """Run the range test in the strategy's first stage (head-only stages use cached features).

    The strategy's ``prepare`` runs first, so PEFT strategies add their modules to ``model`` and
    their parameters are part of the test (the network's weights are restored afterwards). The
    test is a task of the one training loop; it ends early when the smoothed loss diverges.
    """
    fabric = make_fabric(config)
    strategy.prepare(model)
    model.to(fabric.device)
    saved = copy.deepcopy(model.state_dict())
    groups = model.backbone.layer_groups()
    stage = strategy.stages(config.epochs, len(groups))[0]
    set_trainable(groups, stage.num_trainable(len(groups)))
    model.head.requires_grad_(True)
    strategy.configure_trainable(model)
    sweep = Sweep(start_lr, end_lr, num_steps, smoothing, diverge)
    task = LRRangeTask(model, stage, train, config, False, sweep)
    if stage.num_trainable(len(groups)) == 0 and not any(p.requires_grad for p in task.extra):
        dtype = frozen_autocast_dtype(config.precision, fabric.device)
        features = extract_features(
            fabric, model.backbone, cache_from or train, config.batch_size, autocast_dtype=dtype
        )
        task = LRRangeTask(model, stage, TensorDataset(*features), config, True, sweep)
    try:
        Trainer(fabric, seed=config.seed, log=lambda _m: None).fit(task, epochs=1)
    except _Diverged:
        pass
    finally:
        model.load_state_dict(saved)
    return LRFinderResult(task.lrs, task.losses, suggest_lr(task.lrs, task.losses))
