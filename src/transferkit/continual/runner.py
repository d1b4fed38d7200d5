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
from transferkit.errors import ConfigError


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
    """Split the classes into ``num_tasks`` disjoint groups (seeded order), one task each."""
    classes = torch.unique(train_y).tolist()
    if num_tasks < 2 or num_tasks > len(classes):
        raise ConfigError(f"Need 2 <= tasks <= {len(classes)} classes, got {num_tasks}.")
    order = np.random.default_rng(seed).permutation(classes)
    tasks = []
    for group in np.array_split(order, num_tasks):
        g = torch.as_tensor(group)
        tr, te = torch.isin(train_y, g), torch.isin(test_y, g)
        tasks.append(Task(f"classes {sorted(group.tolist())}", train_x[tr], train_y[tr], test_x[te], test_y[te]))
    return tasks


def head_network(in_features: int, num_classes: int, hidden: int = 256) -> nn.Module:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


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
    """Train ``tasks`` in order with ``method``; class-incremental masks classes not yet seen."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    model = head_network(tasks[0].train_x.shape[1], num_classes)
    learner = continual_methods.get(method)(**(method_options or {}))
    matrix = np.zeros((len(tasks), len(tasks)))
    seen: set[int] = set()
    for t, task in enumerate(tasks):
        seen |= set(torch.unique(task.train_y).tolist())
        mask = torch.full((num_classes,), float("-inf"))
        mask[sorted(seen)] = 0.0
        learner.before_task(model, t)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed * 1000 + t)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(task.train_y), generator=generator)
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                x, y = learner.batch(task.train_x[idx], task.train_y[idx])
                logits = model(x)
                masked = logits + mask if class_incremental else logits
                loss = F.cross_entropy(masked, y) + learner.loss(model, x, logits)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        learner.logit_mask = mask if class_incremental else None
        learner.after_task(model, task.train_x, task.train_y, t)
        model.eval()
        with torch.no_grad():
            for j, other in enumerate(tasks[: t + 1]):
                logits = model(other.test_x) + (mask if class_incremental else 0.0)
                matrix[t, j] = float((logits.argmax(1) == other.test_y).float().mean())
        log(f"{method}: after task {t + 1} ({task.name}) accuracy on tasks so far {np.round(matrix[t, : t + 1], 3)}")
    final = matrix[-1]
    forgetting = float(np.mean([matrix[:-1, j].max() - final[j] for j in range(len(tasks) - 1)]))
    return ContinualResult(method, matrix, float(final.mean()), forgetting, time.perf_counter() - started)
