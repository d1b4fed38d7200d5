"""Tasks whose stages come from a transfer strategy over a backbone's layer groups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from transferkit.engine.state import TrainState
from transferkit.engine.trainer import TrainingTask
from transferkit.strategies.base import Stage, Strategy
from transferkit.strategies.freezing import set_trainable


class StrategyTask(TrainingTask):
    """Stages of ``strategy`` over ``groups`` (shallow → deep) and a ``raw`` model with a ``head``.

    Subclasses set ``raw``, ``strategy``, ``groups``, ``stages`` and ``config`` and call
    :meth:`unfreeze_for` first in their ``enter_stage``.
    """

    raw: Any
    strategy: Strategy
    groups: list[Any]
    stages: list[Stage]
    config: Any

    def stage_at(self, epoch: int) -> int:
        return self.strategy.stage_at(epoch, self.config.epochs, len(self.groups))[0]

    def unfreeze_for(self, index: int) -> Stage:
        """Stage ``index``: its deepest groups and the head trainable, the other groups frozen."""
        stage = self.stages[index]
        self.stage = stage
        set_trainable(self.groups, stage.num_trainable(len(self.groups)))
        self.raw.head.requires_grad_(True)
        return stage


def train_task(
    task: StrategyTask,
    config: Any,
    fabric: Any,
    monitor: str,
    out: Path | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> TrainState:
    """Run ``task`` with the run-folder callbacks (best weights kept by ``monitor``, higher is better;
    ``last.pt``/``best.pt``, ``metrics.csv`` and ``config.yaml`` in ``out``; ``resume`` continues it)."""
    from transferkit.engine.callbacks import BestWeights, Checkpointer, ConsoleLog, RunDirWriter
    from transferkit.engine.config import resolve_precision
    from transferkit.engine.trainer import Trainer

    callbacks: list[Any] = [BestWeights(), ConsoleLog()]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        facts = {"train": config.to_dict(), "strategy": {"name": task.strategy.name}, "model": task.spec()}
        callbacks += [Checkpointer(out, resume), RunDirWriter(out, facts)]
    trainer = Trainer(fabric, callbacks, seed=config.seed, grad_accum=config.grad_accum,
                      max_grad_norm=config.max_grad_norm, progress=config.progress, log=log,
                      precision=resolve_precision(config.precision, config.accelerator))  # fmt: skip
    return trainer.fit(task, config.epochs, TrainState(monitor, "max"))
