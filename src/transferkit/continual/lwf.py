"""LwF (Li & Hoiem, TPAMI 2017): before a new task, keep a frozen copy of the model; while
learning the task, distil the copy's outputs on the *classes it knew* into the new model
(temperature-softened KL), so old decision rules survive without old data."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from transferkit.continual.base import ContinualMethod, continual_methods
from transferkit.losses import distillation_loss


@continual_methods.register("lwf")
class LwF(ContinualMethod):
    name = "lwf"

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0) -> None:
        self.alpha, self.temperature = alpha, temperature
        self.old: nn.Module | None = None
        self.old_classes: list[int] = []

    def loss(self, model: nn.Module, x: Tensor, logits: Tensor) -> Tensor | float:
        if self.old is None or not self.old_classes:
            return 0.0
        with torch.no_grad():
            teacher = self.old(x)[:, self.old_classes]
        return self.alpha * distillation_loss(logits[:, self.old_classes], teacher, self.temperature)

    def after_task(self, model: nn.Module, x: Tensor, y: Tensor, task: int) -> None:
        self.old = copy.deepcopy(model).eval().requires_grad_(False)
        self.old_classes = sorted(set(self.old_classes) | set(torch.unique(y).tolist()))
