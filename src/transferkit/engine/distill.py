"""Knowledge distillation (Hinton et al., 2015): a smaller student learns from a trained
teacher's temperature-softened outputs, ``α · CE(y) + (1 − α) · T² · KL(p_T^teacher || p_T^student)``.

The teacher runs on the same (augmented) batch as the student, in eval mode, without gradients.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from transferkit.engine.model import TransferModel
from transferkit.errors import ConfigError


def kd_loss(student_logits, teacher_logits, labels, temperature: float = 4.0, alpha: float = 0.5):
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, 1),
        F.softmax(teacher_logits / temperature, 1),
        reduction="batchmean",
    ) * (temperature**2)
    hard = F.cross_entropy(student_logits, labels) if alpha > 0 else soft.new_zeros(())
    return alpha * hard + (1 - alpha) * soft


@dataclass
class DistillResult:
    student: TransferModel
    history: list[dict[str, Any]]
    val_accuracy: float
    teacher_agreement: float
    seconds: float


def _evaluate(student: nn.Module, teacher: nn.Module, dataset: Dataset, batch_size: int, device) -> tuple[float, float]:
    student.eval()
    correct = agree = total = 0
    with torch.inference_mode():
        for x, y in DataLoader(dataset, batch_size=batch_size):
            x = x.to(device)
            s = student(x).argmax(1).cpu()
            t = teacher(x).argmax(1).cpu()
            correct += int((s == torch.as_tensor(y)).sum())
            agree += int((s == t).sum())
            total += len(s)
    return correct / total, agree / total


def distill(
    teacher: TransferModel,
    student: TransferModel,
    train: Dataset,
    val: Dataset,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 32,
    temperature: float = 4.0,
    alpha: float = 0.5,
    seed: int = 0,
    select: str = "val_acc",
    log: Callable[[str], None] = print,
) -> DistillResult:
    """Train ``student`` (all parameters) to mimic ``teacher``.

    ``select``: keep the epoch with the best validation accuracy (``val_acc``) or the last (``last``).
    """
    if teacher.classes != student.classes:
        raise ConfigError(f"Teacher classes {teacher.classes} differ from the student's {student.classes}.")
    if select not in ("val_acc", "last"):
        raise ConfigError(f"select must be val_acc or last, got {select!r}.")
    if not 0 <= alpha <= 1 or temperature <= 0:
        raise ConfigError(f"Need 0 <= alpha <= 1 and temperature > 0, got alpha={alpha}, temperature={temperature}.")
    started = time.perf_counter()
    device = next(student.parameters()).device
    teacher.eval().requires_grad_(False).to(device)
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    history, best, best_state = [], -1.0, None
    for epoch in range(epochs):
        student.train()
        total = 0.0
        for x, y in DataLoader(train, batch_size=batch_size, shuffle=True, generator=generator):
            x, y = x.to(device), torch.as_tensor(y).to(device)
            with torch.no_grad():
                teacher_logits = teacher(x)
            loss = kd_loss(student(x), teacher_logits, y, temperature, alpha)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(y)
        accuracy, agreement = _evaluate(student, teacher, val, batch_size, device)
        history.append({"epoch": epoch, "loss": total / len(train), "val_acc": accuracy, "agreement": agreement})
        log(
            f"epoch {epoch + 1}/{epochs} kd loss {total / len(train):.4f} | val acc {accuracy:.3f} | "
            f"agreement with teacher {agreement:.3f}"
        )
        if select == "last" or accuracy > best:
            best, best_state = accuracy, copy.deepcopy(student.state_dict())
    assert best_state is not None
    student.load_state_dict(best_state)
    accuracy, agreement = _evaluate(student, teacher, val, batch_size, device)
    return DistillResult(student.eval(), history, accuracy, agreement, time.perf_counter() - started)
