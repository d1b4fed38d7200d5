"""Tasks whose stages come from a transfer strategy over a backbone's layer groups."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from transferkit.data.sampler import EpochSampler
from transferkit.engine.optim import PER_STEP
from transferkit.engine.state import TrainState
from transferkit.engine.trainer import TrainingTask
from transferkit.seeding import derive_seed
from transferkit.strategies.base import Stage, Strategy
from transferkit.strategies.freezing import apply_bn_policy, set_trainable


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
    data_facts: dict[str, Any] | None = None,
) -> TrainState:
    """Run ``task`` with the run-folder callbacks (best weights kept by ``monitor``, higher is better;
    ``last.pt``/``best.pt``, ``metrics.csv`` and ``config.yaml`` in ``out``; ``resume`` continues it, refused
    when the options, the strategy's settings, the model or ``data_facts`` differ from the saved run's)."""
    from transferkit.engine import run_dir
    from transferkit.engine.callbacks import BestWeights, Checkpointer, ConsoleLog, RunDirWriter
    from transferkit.engine.config import resolve_precision
    from transferkit.engine.trainer import Trainer

    callbacks: list[Any] = [BestWeights(), ConsoleLog()]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        facts = run_dir.run_facts(config, task.strategy, task.spec(), {"data": data_facts or {}})
        callbacks += [Checkpointer(out, resume, facts), RunDirWriter(out, facts)]
    trainer = Trainer(fabric, callbacks, seed=config.seed, grad_accum=config.grad_accum,
                      max_grad_norm=config.max_grad_norm, progress=config.progress, log=log,
                      precision=resolve_precision(config.precision, config.accelerator))  # fmt: skip
    return trainer.fit(task, config.epochs, TrainState(monitor, "max"))


class DenseTask(StrategyTask):
    """A strategy task over a whole model (segmentation, detection): one optimizer per stage over the
    groups' and the head's parameters, its scheduler, and checkpoints of weights, optimizer and scheduler.

    Subclasses call :meth:`attach` in ``__init__`` and define ``batches``, ``training_step``, ``validate``.
    """

    data: Any
    fabric: Any
    scheduler: Any = None

    def attach(self, model: Any, strategy: Strategy, data: Any, config: Any, fabric: Any) -> None:
        self.raw, self.strategy, self.data, self.config, self.fabric = model, strategy, data, config, fabric
        self.groups = model.layer_groups()
        self.stages = strategy.stages(config.epochs, len(self.groups))
        self.last: dict[str, Any] = {}
        model.to(fabric.device)

    def enter_stage(self, trainer: Any, index: int) -> None:
        from transferkit.engine.optim import build_optimizer, build_scheduler, param_groups

        stage = self.unfreeze_for(index)
        optimizer = build_optimizer(param_groups(self.groups, self.raw.head, stage, self.config), self.config)
        steps = math.ceil(len(self.data.train) / self.config.batch_size)
        self.scheduler = build_scheduler(optimizer, self.config, stage.end - stage.start, steps)
        self.module, self.optimizer = trainer.setup(self.raw, optimizer)

    def train_mode(self) -> None:
        """Training mode, frozen groups (and all of a frozen encoder) in eval (see ``apply_bn_policy``)."""
        self.module.train()
        apply_bn_policy(self.groups, self.config.train_bn, self.raw.encoder)

    def loader(self, dataset: Any, epoch: int, shuffle: bool, collate_fn: Callable | None = None) -> DataLoader:
        """Epoch ``epoch``'s batches of ``dataset`` (order and augmentation seeded by it)."""
        sampler = EpochSampler(len(dataset), self.config.seed, shuffle, epoch=epoch, rank=self.fabric.global_rank,
                               world_size=self.fabric.world_size)  # fmt: skip
        generator = torch.Generator().manual_seed(derive_seed(self.config.seed, epoch, "loader"))
        return DataLoader(dataset, batch_size=self.config.batch_size, sampler=sampler, collate_fn=collate_fn,
                          num_workers=self.config.num_workers, generator=generator)  # fmt: skip

    def after_step(self) -> None:
        if self.scheduler is not None and self.config.scheduler in PER_STEP:
            self.scheduler.step()

    def step_epoch_scheduler(self, monitored: float) -> None:
        """Per-epoch schedulers step after validation (``plateau`` on the monitored metric, higher is better)."""
        if self.scheduler is None or self.config.scheduler in PER_STEP:
            return
        self.scheduler.step(-monitored) if self.config.scheduler == "plateau" else self.scheduler.step()

    def weights(self) -> dict[str, Any]:
        return self.raw.state_dict()

    def load_weights(self, weights: dict[str, Any]) -> None:  # also before the first stage (resume)
        self.raw.load_state_dict(weights)

    def checkpoint(self) -> dict[str, Any]:
        scheduler = self.scheduler.state_dict() if self.scheduler is not None else None
        return {"state_dict": self.raw.state_dict(), "optimizer": self.optimizer.state_dict(), "scheduler": scheduler}

    def restore(self, payload: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler is not None and payload.get("scheduler") is not None:
            self.scheduler.load_state_dict(payload["scheduler"])

    def details(self) -> dict[str, Any]:
        return {"classes": self.data.classes, **self.last}

    def spec(self) -> dict[str, Any]:
        return self.raw.spec()


@dataclass
class DenseResult:
    """A dense-task run: the model with its best epoch's weights, the history, the best epoch's metrics."""

    model: Any
    history: list[dict[str, Any]]
    best_epoch: int
    metrics: dict[str, Any]
    run_dir: Path | None = None
    train_seconds: float = 0.0
    test_metrics: dict[str, Any] | None = None  # the test split's, scored once after selection


def dense_data_facts(data: Any) -> dict[str, Any]:
    """The data a dense run trained on, as its checkpoints record it: classes and split sizes."""
    splits = {name: len(getattr(data, name)) for name in ("train", "val", "test") if getattr(data, name, None)}
    return {"classes": list(getattr(data, "classes", [])), **splits}


def fit_dense(
    task_class: type[DenseTask],
    model: Any,
    data: Any,
    strategy: str | Strategy,
    config: Any,
    fabric: Any,
    monitor: str,
    out: str | Path | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
    evaluate: Callable[[Any, Any], dict[str, Any]] | None = None,
) -> DenseResult:
    """Train ``task_class(model, strategy, data, config, fabric)``; the epoch with the highest ``monitor`` is kept
    (and saved in ``out``). ``metrics`` holds the best row's validation columns. When the data has a test split,
    the first process scores it once after selection: ``evaluate(model, data.test)`` → ``test_metrics``."""
    from transferkit.strategies import create_strategy

    torch.manual_seed(config.seed)
    strat = create_strategy(strategy) if isinstance(strategy, str) else strategy
    task = task_class(model, strat, data, config, fabric)
    run_dir = Path(out) if out is not None else None
    state = train_task(task, config, fabric, monitor, run_dir, resume, log, dense_data_facts(data))
    best = next(r for r in state.history if r["epoch"] == state.best_epoch)
    metrics = {k: v for k, v in best.items() if k.startswith("val_")}
    result = DenseResult(model, state.history, state.best_epoch, metrics, run_dir, state.train_seconds)
    if fabric.is_global_zero and evaluate is not None and getattr(data, "test", None) is not None:
        result.test_metrics = evaluate(model, data.test)
    return result
