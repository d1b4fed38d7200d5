"""A student fine-tuned on self-training's pseudo-labels (teacher → student, as in Xie et al.'s noisy student).

Self-training (:mod:`~transferkit.semi.self_training`) is bounded by the frozen features it works on.
Its kept head — the *teacher* — labels the unlabelled pool (class-balanced: the most confident
``share`` of the pool); a *student* — a fresh copy of the pretrained backbone with a new head — is
then fine-tuned on the labelled images plus those pseudo-labelled ones, with label smoothing, so that
its features, not only its head, learn from the pool. Two schedules (:meth:`StudentConfig.for_device`):

- on a CPU, the deepest 3 layer groups (``partial``) on un-augmented images: the engine caches the
  frozen bottom's outputs once per image (``cache_views=1``), one bottom pass per image;
- on a GPU, Xie et al.'s recipe: every layer (LP-FT: a probe, then all layers with BatchNorm's
  statistics frozen), the whole pool, RandAugment views as the student's noise and an EMA of its
  weights.

Selected like every run on validation; ``auto`` compares it with the teacher and the labelled-only
recipes. This module holds the data and the settings; the training is the engine's, driven by the API.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from transferkit.engine.config import TrainConfig
from transferkit.errors import ConfigError
from transferkit.semi.self_training import balanced_pseudo_labels


@dataclass(frozen=True)
class StudentConfig:
    share: float = 0.8  # of the unlabelled images pseudo-labelled (self-training's last round: 0.8)
    strategy: str = "partial"  # or "lp-ft": every layer after a probe
    groups: int = 3  # layer groups fine-tuned (``partial``)
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 64
    label_smoothing: float = 0.1
    auto_augment: str = "none"  # the student's training views ("none" with ``partial``: cached, un-augmented)
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.strategy not in ("partial", "lp-ft"):
            raise ConfigError(f"The student trains with partial or lp-ft, got {self.strategy!r}.")
        if not 0 < self.share <= 1:
            raise ConfigError(f"The student's share of the pool must be in (0, 1], got {self.share}.")

    @classmethod
    def for_device(cls, gpu: bool) -> StudentConfig:
        """The CPU schedule (the deepest groups on cached bottoms) or the GPU one (noisy student)."""
        if not gpu:
            return cls()
        return cls(share=1.0, strategy="lp-ft", epochs=7, lr=5e-4, batch_size=128, auto_augment="randaugment",
                   ema_decay=0.999)  # fmt: skip

    def strategy_options(self) -> dict[str, Any]:
        if self.strategy == "partial":
            return {"groups": self.groups}
        return {"probe_epochs": 1, "ft_lr_scale": 1.0, "freeze_bn": True}  # as FixMatch's LP-FT

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """``base`` (the user's seed, devices, precision, cache…) with the student's schedule."""
        warmup = 1.0 if self.strategy == "lp-ft" else base.warmup_epochs
        return dataclasses.replace(
            base, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, label_smoothing=self.label_smoothing,
            cache_views=1, ema_decay=self.ema_decay, warmup_epochs=warmup,
        )  # fmt: skip


class PseudoLabelled(Dataset):
    """The labelled images, then the ``indices`` of the unlabelled ``pool`` with the ``labels`` given to them.

    Both datasets give raw images by ``raw(index)`` (as :class:`~transferkit.data.dataset.TensorImageDataset`
    and :class:`~transferkit.data.dataset.ImageFileDataset` do), so the usual train/eval transforms apply.
    """

    def __init__(self, labelled: Dataset, pool: Dataset, indices: Sequence[int], labels: Sequence[int]) -> None:
        if len(indices) != len(labels):
            raise ValueError(f"{len(indices)} pool indices but {len(labels)} pseudo-labels.")
        self.labelled, self.pool = labelled, pool
        self.indices, self.pseudo = [int(i) for i in indices], [int(c) for c in labels]
        self.first = len(labelled)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.first + len(self.indices)

    @property
    def labels(self) -> list[int]:
        return list(self.labelled.labels) + self.pseudo  # type: ignore[attr-defined]

    def label(self, index: int) -> int:
        return self.labelled.label(index) if index < self.first else self.pseudo[index - self.first]  # type: ignore[attr-defined]

    def raw(self, index: int) -> Tensor:
        if index < self.first:
            return self.labelled.raw(index)  # type: ignore[attr-defined]
        return self.pool.raw(self.indices[index - self.first])  # type: ignore[attr-defined]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.raw(index), self.label(index)

    def digest(self) -> str:
        """SHA-256 of the pool indices and their pseudo-labels: which images got which label."""
        return hashlib.sha256(json.dumps([self.indices, self.pseudo]).encode()).hexdigest()


def student_images(labelled: Dataset, pool: Dataset, teacher_probs: Tensor, share: float) -> PseudoLabelled:
    """The labelled images plus the teacher's class-balanced pseudo-labels of ``share`` of the pool."""
    classes = teacher_probs.shape[1]
    kept, labels = balanced_pseudo_labels(teacher_probs, int(share * len(pool) / classes))  # type: ignore[arg-type]
    return PseudoLabelled(labelled, pool, kept.tolist(), labels.tolist())
