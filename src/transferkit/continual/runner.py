"""Train a task sequence and measure the accuracy matrix, average accuracy and forgetting.

``R[i, j]``: accuracy on task ``j``'s test data after training on tasks ``0..i``.
Average accuracy: mean of the last row. Forgetting (Chaudhry et al., 2018): for each old task
the drop from its best accuracy to its final one, averaged over all but the last task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.continual.base import continual_methods
from transferkit.engine.distributed import local_fabric
from transferkit.engine.trainer import StepOutput, Trainer, TrainingTask
from transferkit.errors import ConfigError
from transferkit.heads.mlp import mlp
from transferkit.seeding import derive_seed


@dataclass(frozen=True)
class Task:
    """One task: training and test features with labels in the global label space."""

    name: str
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor


@dataclass
class ContinualResult:
    method: str
    accuracy_matrix: np.ndarray
    average_accuracy: float
    forgetting: float
    seconds: float


def class_incremental_tasks(
    train_x: Tensor, train_y: Tensor, test_x: Tensor, test_y: Tensor, num_tasks: int, seed: int = 0
) -> list[Task]:
    """Split the classes into ``num_tasks`` disjoint groups (seeded order) of at least 2 classes, one task each."""
    classes = torch.unique(train_y).tolist()
    check_task_count(num_tasks, len(classes))
    order = np.random.default_rng(seed).permutation(classes)
    tasks = []
    for group in np.array_split(order, num_tasks):
        g = torch.as_tensor(group)
        tr, te = torch.isin(train_y, g), torch.isin(test_y, g)
        tasks.append(Task(f"classes {sorted(group.tolist())}", train_x[tr], train_y[tr], test_x[te], test_y[te]))
    return tasks


def check_task_count(num_tasks: int, num_classes: int) -> None:
    """At least 2 tasks, and at least 2 classes in each: cross-entropy over a single class has no gradient
    (a progressive column's head would learn nothing) and a one-class task is trivially right task-aware."""
    if num_tasks < 2 or 2 * num_tasks > num_classes:
        most = num_classes // 2
        fix = {0: "it needs at least 4 classes", 1: "it needs at least 4 classes", 2: "use --tasks 2"}.get(
            most, f"use --tasks 2 to {most}"
        )
        raise ConfigError(
            f"--tasks {num_tasks} on {num_classes} classes: each of at least 2 tasks needs 2 classes or more; {fix}."
        )


def head_network(in_features: int, num_classes: int, hidden: int = 256) -> nn.Module:
    return mlp(in_features, hidden, num_classes)


class _SequentialTask(TrainingTask):
    """One task of the sequence: the task's cross-entropy (masked to the classes seen so far in
    class-incremental runs) plus the continual method's regulariser, on its (rehearsal-extended) batches."""

    def __init__(self, model: nn.Module, learner, task: Task, mask: Tensor | None, lr: float, batch_size: int) -> None:
        self.model, self.learner, self.task, self.mask = model, learner, task, mask
        self.lr, self.batch_size, self.name = lr, batch_size, f"continual ({learner.name}, {task.name})"

    def setup(self, trainer: Trainer) -> None:
        self.module, self.optimizer = trainer.setup(self.model, torch.optim.Adam(self.model.parameters(), lr=self.lr))

    def batches(self, epoch: int) -> list[Tensor]:
        self.model.train()
        return torch.randperm(len(self.task.train_y)).split(self.batch_size)  # seeded by the trainer

    def training_step(self, idx: Tensor) -> StepOutput:
        x, y = self.learner.batch(self.task.train_x[idx], self.task.train_y[idx])
        logits = self.module(x)
        masked = logits + self.mask if self.mask is not None else logits
        loss = F.cross_entropy(masked, y) + self.learner.loss(self.model, x, logits)
        return StepOutput(loss, len(y), masked, y)

    def validate(self, epoch: int) -> dict[str, float]:
        return {}


def run_continual(
    tasks: Sequence[Task],
    method: str,
    num_classes: int,
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    method_options: dict | None = None,
    class_incremental: bool = True,
    log: Callable[[str], None] = print,
) -> ContinualResult:
    """Train ``tasks`` in order with ``method``; class-incremental masks classes not yet seen.

    Each task is a run of the one training loop (seeded with ``(seed, task)``) on a shared head.
    """
    torch.manual_seed(seed)
    started = time.perf_counter()
    model = head_network(tasks[0].train_x.shape[1], num_classes)
    cls = continual_methods.get(method)
    if getattr(cls, "columns", False):
        raise ConfigError(f"{method!r} grows columns over the backbone's layers: run it with run_progressive.")
    learner = cls(**(method_options or {}))
    fabric = local_fabric("cpu")
    matrix = np.zeros((len(tasks), len(tasks)))
    seen: set[int] = set()
    for t, task in enumerate(tasks):
        seen |= set(torch.unique(task.train_y).tolist())
        mask = torch.full((num_classes,), float("-inf"))
        mask[sorted(seen)] = 0.0
        mask = mask if class_incremental else None
        learner.before_task(model, t)
        trainer = Trainer(fabric, seed=derive_seed(seed, t), log=log)
        trainer.fit(_SequentialTask(model, learner, task, mask, lr, batch_size), epochs)
        learner.logit_mask = mask
        learner.after_task(model, task.train_x, task.train_y, t)
        matrix[t, : t + 1] = _accuracies(model, tasks[: t + 1], mask)
        log(f"{method}: after task {t + 1} ({task.name}) accuracy on tasks so far {np.round(matrix[t, : t + 1], 3)}")
    return summarize(method, matrix, time.perf_counter() - started)


def summarize(method: str, matrix: np.ndarray, seconds: float) -> ContinualResult:
    """Average accuracy (last row's mean) and forgetting of an accuracy matrix."""
    final = matrix[-1]
    forgetting = float(np.mean([matrix[:-1, j].max() - final[j] for j in range(len(matrix) - 1)]))
    return ContinualResult(method, matrix, float(final.mean()), forgetting, seconds)


def _accuracies(model: nn.Module, tasks: Sequence[Task], mask: Tensor | None) -> list[float]:
    """Test accuracy on each task (with the class-incremental mask, if any)."""
    model.eval()
    with torch.no_grad():
        logits = [model(task.test_x) + (mask if mask is not None else 0.0) for task in tasks]
    return [float((out.argmax(1) == task.test_y).float().mean()) for out, task in zip(logits, tasks)]
