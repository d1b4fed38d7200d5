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
    their parameters are part of the test (the network's weights are restored afterwards).
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
    in_groups = {id(p) for g in groups for p in g.parameters()}
    extra = [p for p in model.backbone.parameters() if id(p) not in in_groups]  # PEFT parameters
    cached = stage.num_trainable(len(groups)) == 0 and not any(p.requires_grad for p in extra)
    if cached:
        features, labels = extract_features(
            fabric,
            model.backbone,
            cache_from or train,
            config.batch_size,
            autocast_dtype=frozen_autocast_dtype(config.precision, fabric.device),
        )
        train = TensorDataset(features, labels)
    optimizer = build_optimizer(param_groups(groups, model.head, stage, config, extra), config)
    base = [g["lr"] / config.lr for g in optimizer.param_groups]
    module, optimizer = fabric.setup(model, optimizer)
    loader = DataLoader(
        train, batch_size=config.batch_size, shuffle=True, generator=torch.Generator().manual_seed(config.seed)
    )
    criterion = nn.CrossEntropyLoss()
    factor = (end_lr / start_lr) ** (1 / max(1, num_steps - 1))
    lrs, losses, avg, best = [], [], 0.0, math.inf
    module.train()
    apply_bn_policy(groups, config.train_bn)
    step = 0
    try:
        while step < num_steps:
            for inputs, targets in loader:
                if step >= num_steps:
                    break
                lr = start_lr * factor**step
                for group, scale in zip(optimizer.param_groups, base):
                    group["lr"] = lr * scale
                inputs, targets = fabric.to_device((inputs, targets))
                loss = criterion(module(inputs, from_features=cached).float(), targets)
                optimizer.zero_grad(set_to_none=True)
                fabric.backward(loss)
                optimizer.step()
                avg = smoothing * avg + (1 - smoothing) * loss.item()
                smoothed = avg / (1 - smoothing ** (step + 1))
                if not math.isfinite(smoothed) or (step > 5 and smoothed > diverge * best):
                    step = num_steps
                    break
                best = min(best, smoothed)
                lrs.append(lr)
                losses.append(smoothed)
                step += 1
    finally:
        model.load_state_dict(saved)
    return LRFinderResult(lrs, losses, suggest_lr(lrs, losses))
