"""Continual transfer: a sequence of tasks learned one after another on top of a pretrained,
frozen backbone's features, by a shared MLP head (the part that can forget).

A method hooks into the sequential trainer: ``loss`` adds a regulariser to the task loss,
``batch`` may add rehearsal samples, ``after_task`` consolidates (Fisher, old model, buffer).
"""

from __future__ import annotations

from torch import Tensor, nn

from transferkit.registry import Registry


class ContinualMethod:
    name: str = ""
    # added to the logits by the trainer (-inf for classes not seen yet in class-incremental runs);
    # methods that evaluate the model themselves (EWC's Fisher) use the same masked logits
    logit_mask: Tensor | None = None

    def before_task(self, model: nn.Module, task: int) -> None:
        """Called before training on task ``task``."""

    def batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The batch actually trained on (rehearsal methods append stored samples)."""
        return x, y

    def loss(self, model: nn.Module, x: Tensor, logits: Tensor) -> Tensor | float:
        """Regulariser added to the cross-entropy of the current task."""
        return 0.0

    def after_task(self, model: nn.Module, x: Tensor, y: Tensor, task: int) -> None:
        """Called with the finished task's training data."""


continual_methods: Registry[type[ContinualMethod]] = Registry("continual method")
