"""Knowledge distillation (Hinton et al., 2015): a smaller student learns from a trained
teacher's temperature-softened outputs, ``α · CE(y) + (1 − α) · T² · KL(p_T^teacher || p_T^student)``.

The teacher runs on the same (augmented) batch as the student, in eval mode, without gradients.
Training is a :class:`~transferkit.engine.trainer.TrainingTask` of the one training loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from transferkit.engine.callbacks import BestWeights, Callback, ConsoleLog
from transferkit.engine.distributed import local_fabric
from transferkit.engine.model import TransferModel, device_of
from transferkit.engine.state import TrainState
from transferkit.engine.trainer import StepOutput, Trainer, TrainingTask
from transferkit.errors import ConfigError
from transferkit.losses import distillation_loss
from transferkit.seeding import generator


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, temperature=4.0, alpha=0.5) -> Tensor:
    """``α · CE(student, labels) + (1 − α) · distillation_loss(student, teacher, T)``."""
    soft = distillation_loss(student_logits, teacher_logits, temperature)
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


class DistillationTask(TrainingTask):
    """The student's loss on each batch against the teacher's logits of the same batch."""

    name = "distill"

    def __init__(self, teacher, student, train, val, lr, batch_size, temperature, alpha, seed) -> None:
        self.teacher, self.student, self.train, self.val = teacher, student, train, val
        self.lr, self.batch_size, self.temperature, self.alpha, self.seed = lr, batch_size, temperature, alpha, seed

    def setup(self, trainer: Trainer) -> None:
        optimizer = torch.optim.AdamW(self.student.parameters(), lr=self.lr, weight_decay=1e-4)
        self.module, self.optimizer = trainer.setup(self.student, optimizer)
        self.device = trainer.fabric.device
        self.teacher.eval().requires_grad_(False).to(self.device)

    def batches(self, epoch: int) -> DataLoader:
        self.student.train()
        rng = generator(self.seed, epoch)
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, generator=rng)

    def training_step(self, batch: tuple[Tensor, Tensor]) -> StepOutput:
        x, y = batch[0].to(self.device), torch.as_tensor(batch[1]).to(self.device)
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        logits = self.module(x)
        return StepOutput(kd_loss(logits, teacher_logits, y, self.temperature, self.alpha), len(y), logits, y)

    def validate(self, epoch: int) -> dict[str, Any]:
        accuracy, agreement = _evaluate(self.student, self.teacher, self.val, self.batch_size, self.device)
        return {"val_acc": accuracy, "agreement": agreement}

    def weights(self) -> dict[str, Tensor]:
        return self.student.state_dict()

    def load_weights(self, weights: dict[str, Tensor]) -> None:
        self.student.load_state_dict(weights)

    def spec(self) -> dict[str, Any]:
        return self.student.spec()

    def describe(self, row: dict[str, Any], improved: bool) -> str:
        return (
            f"epoch {row['epoch'] + 1} kd loss {row['train_loss']:.4f} | val acc {row['val_acc']:.3f} | "
            f"agreement with teacher {row['agreement']:.3f}{' *' if improved else ''}"
        )


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
    precision: str = "32-true",
    callbacks: Sequence[Callback] = (),
) -> DistillResult:
    """Train ``student`` (all parameters) to mimic ``teacher``.

    ``select``: keep the epoch with the best validation accuracy (``val_acc``) or the last (``last``).
    ``callbacks``: more callbacks of the training loop (``Checkpointer``, ``Loggers``, ``EarlyStopping``...).
    """
    if teacher.classes != student.classes:
        raise ConfigError(f"Teacher classes {teacher.classes} differ from the student's {student.classes}.")
    if select not in ("val_acc", "last"):
        raise ConfigError(f"select must be val_acc or last, got {select!r}.")
    if not 0 <= alpha <= 1 or temperature <= 0:
        raise ConfigError(f"Need 0 <= alpha <= 1 and temperature > 0, got alpha={alpha}, temperature={temperature}.")
    started = time.perf_counter()
    device = device_of(student)
    fabric = local_fabric(device, precision)
    task = DistillationTask(teacher, student, train, val, lr, batch_size, temperature, alpha, seed)
    state = TrainState("val_acc" if select == "val_acc" else None, "max")
    trainer = Trainer(fabric, [BestWeights(), ConsoleLog(), *callbacks], seed=seed, log=log, precision=precision)
    trainer.fit(task, epochs, state)
    accuracy, agreement = _evaluate(student, teacher, val, batch_size, device)
    return DistillResult(student.eval(), state.history, accuracy, agreement, time.perf_counter() - started)
