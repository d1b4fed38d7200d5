"""``TrainState``: where a run is — the next epoch, the current stage, the history, the best epoch.

The one training loop (:class:`~transferkit.engine.trainer.Trainer`) advances it; callbacks read
it (``Checkpointer`` saves it, ``EarlyStopping`` sets ``should_stop``) and a resumed run starts
from the state saved in ``last.pt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _is_better(value: float, best: float, mode: str) -> bool:
    return value < best if mode == "min" else value > best


def best_index(history: list[dict[str, Any]], monitor: str | None, mode: str = "max") -> int:
    """Index of the best row of ``history`` by ``monitor`` (first of ties); ``None`` monitor: the last row."""
    if monitor is None:
        return len(history) - 1
    best = 0
    for i, row in enumerate(history):
        if _is_better(row[monitor], history[best][monitor], mode):
            best = i
    return best


@dataclass
class TrainState:
    """A run's progress.

    Args:
        monitor: History column that picks the best epoch (``None``: the last epoch is the best).
        mode: ``min`` or ``max`` for ``monitor``.
    """

    monitor: str | None = None
    mode: str = "min"
    epoch: int = 0  # the next epoch to run
    stage: int = -1  # index of the current stage (-1: none entered yet)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_weights: dict[str, Any] | None = None  # the best epoch's weights, kept by BestWeights
    should_stop: bool = False
    stopped_early: bool = False
    train_seconds: float = 0.0
    train_images: int = 0
    resume: dict[str, Any] | None = None  # a loaded last.pt, consumed when its stage is entered again

    @property
    def best_epoch(self) -> int:
        return self.history[best_index(self.history, self.monitor, self.mode)]["epoch"]

    @property
    def improved(self) -> bool:
        """Whether the last recorded epoch is the best so far."""
        return bool(self.history) and self.best_epoch == self.history[-1]["epoch"]

    @property
    def epochs_since_best(self) -> int:
        return len(self.history) - 1 - best_index(self.history, self.monitor, self.mode)
