"""Optimizer and scheduler for one strategy stage."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, ReduceLROnPlateau, StepLR

from transferkit.backbones.base import LayerGroup
from transferkit.engine.config import MONITORS, TrainConfig
from transferkit.strategies.base import Stage

PER_STEP = ("cosine", "onecycle")  # schedulers stepped every optimizer step; the others every epoch


def _split_decay(params: list[nn.Parameter]) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Biases and norm/scale vectors (ndim <= 1) get no weight decay."""
    return [p for p in params if p.ndim > 1], [p for p in params if p.ndim <= 1]


def param_groups(
    groups: list[LayerGroup],
    head: nn.Module,
    stage: Stage,
    config: TrainConfig,
    extra: list[nn.Parameter] | None = None,
) -> list[dict]:
    """One optimizer group per trainable layer group (and per decay/no-decay), with its learning rate.

    ``extra``: parameters outside the layer groups and the head (PEFT modules), at the head's rate.
    """
    result = []
    entries = [(f"group{i}", list(g.parameters()), stage.scale(i)) for i, g in enumerate(groups)]
    entries.append(("head", list(head.parameters()), stage.head_lr_scale))
    if extra:
        entries.append(("extra", list(extra), stage.head_lr_scale))
    for name, params, scale in entries:
        params = [p for p in params if p.requires_grad]
        decay, no_decay = _split_decay(params)
        for subset, wd in ((decay, config.weight_decay), (no_decay, 0.0)):
            if subset:
                result.append({"params": subset, "lr": config.lr * scale, "weight_decay": wd, "name": name})
    return result


def build_optimizer(groups: list[dict], config: TrainConfig) -> Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)


def build_scheduler(
    optimizer: Optimizer, config: TrainConfig, stage_epochs: int, steps_per_epoch: int
) -> LRScheduler | ReduceLROnPlateau | None:
    """The stage's scheduler; ``stage_epochs × steps_per_epoch`` optimizer steps in total."""
    total = max(1, stage_epochs * steps_per_epoch)
    if config.scheduler == "none":
        return None
    if config.scheduler == "step":
        return StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if config.scheduler == "plateau":
        return ReduceLROnPlateau(optimizer, mode=MONITORS[config.monitor], factor=config.gamma, patience=2)
    if config.scheduler == "onecycle":
        return OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total)
    warmup = min(total - 1, int(round(config.warmup_epochs * steps_per_epoch)))
    return LambdaLR(optimizer, CosineWithWarmup(warmup, total))


class CosineWithWarmup:
    """Linear warm-up from 0 over ``warmup`` steps, then cosine decay to 0 at ``total`` steps.

    A class rather than a closure so ``LambdaLR.state_dict()`` stores it as plain numbers.
    """

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup = warmup
        self.total = total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
