"""A student fine-tuned on self-training's pseudo-labels (teacher → student, as in Xie et al.'s noisy student).

Self-training (:mod:`~transferkit.semi.self_training`) is bounded by the frozen features it works on.
Its kept head — the *teacher* — labels the unlabelled pool (class-balanced: the most confident
``share`` of the pool, as in its last round); a *student* — a fresh copy of the pretrained backbone
with a new head — is then fine-tuned (``partial``: the deepest ``groups`` layer groups) on the
labelled images plus those pseudo-labelled ones, with label smoothing, so that its features, not only
its head, learn from the pool. Unlike Xie et al.'s student it sees each image un-augmented: the engine
caches the frozen bottom's outputs once per image (``cache_views=1``), which keeps the CPU cost at
one bottom pass per image. Selected like every run on validation; ``auto`` compares it with the
teacher and the labelled-only recipes.

This module holds the data and the settings; the training is the engine's, driven by the API.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor
from torch.utils.data import Dataset

from transferkit.engine.config import TrainConfig
from transferkit.semi.self_training import balanced_pseudo_labels


@dataclass(frozen=True)
class StudentConfig:
    share: float = 0.8  # of the unlabelled images pseudo-labelled (self-training's last round: 0.8)
    groups: int = 3  # layer groups fine-tuned (``partial``)
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 64
    label_smoothing: float = 0.1

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """``base`` (the user's seed, devices, precision, cache…) with the student's schedule."""
        return dataclasses.replace(
            base, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
            label_smoothing=self.label_smoothing, cache_views=1,
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
