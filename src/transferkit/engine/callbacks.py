"""Callbacks of the one training loop, in the manner of Lightning's ``ModelCheckpoint`` /
``EarlyStopping`` / ``BaseFinetuning`` and fastai's ``SaveModelCallback``.

Hooks (all optional): ``on_fit_start``, ``on_stage_start``, ``on_epoch_start``,
``on_epoch_end(row, stats)``, ``on_fit_end``, ``on_exception``. Each receives the
:class:`~transferkit.engine.trainer.Trainer` (``trainer.task`` is the method being trained) and the
:class:`~transferkit.engine.state.TrainState`. Files are written by global rank 0 only.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from transferkit.engine import run_dir
from transferkit.engine.checkpoint import atomic_save, load_checkpoint
from transferkit.engine.loggers import log_epoch, log_hyperparams
from transferkit.engine.state import TrainState
from transferkit.errors import ConfigError


class Callback:
    """Base class with every hook doing nothing; override the ones you need."""

    def on_fit_start(self, trainer: Any, state: TrainState) -> None: ...

    def on_stage_start(self, trainer: Any, state: TrainState) -> None: ...

    def on_epoch_start(self, trainer: Any, state: TrainState) -> None: ...

    def on_epoch_end(self, trainer: Any, state: TrainState, row: dict[str, Any], stats: Any) -> None: ...

    def on_fit_end(self, trainer: Any, state: TrainState) -> None: ...

    def on_exception(self, trainer: Any, state: TrainState) -> None: ...


class StageSwitcher(Callback):
    """Enters the task's stage of each epoch (freezing, optimizer) when it changes."""

    def on_epoch_start(self, trainer: Any, state: TrainState) -> None:
        index = trainer.task.stage_at(state.epoch)
        if index != state.stage:
            state.stage = index
            trainer.task.enter_stage(trainer, index)
            trainer.call("on_stage_start", state)


class BestWeights(Callback):
    """Keeps a copy of the best epoch's weights (by ``state.monitor``) and loads them at the end."""

    def on_epoch_end(self, trainer: Any, state: TrainState, row: dict[str, Any], stats: Any) -> None:
        if state.improved:
            state.best_weights = copy.deepcopy(trainer.task.weights())

    def on_fit_end(self, trainer: Any, state: TrainState) -> None:
        if state.best_weights is not None:
            trainer.task.load_weights(state.best_weights)


class EarlyStopping(Callback):
    """Stops after ``patience`` epochs without improvement of ``state.monitor``."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, trainer: Any, state: TrainState, row: dict[str, Any], stats: Any) -> None:
        if state.epochs_since_best >= self.patience:
            state.should_stop = state.stopped_early = True
            trainer.log(f"Early stopping: {state.monitor} has not improved for {self.patience} epochs.")


class ConsoleLog(Callback):
    """One line per epoch (``task.describe``), ``*`` marking a new best."""

    def on_epoch_end(self, trainer: Any, state: TrainState, row: dict[str, Any], stats: Any) -> None:
        trainer.log(trainer.task.describe(row, state.improved))


class Checkpointer(Callback):
    """``last.pt`` every epoch (weights, optimizer, scheduler, state: all an exact resume needs),
    ``best.pt`` when the epoch is the best so far; both written atomically.

    Args:
        out: The run folder.
        resume: Continue from ``out/last.pt`` (its optimizer state is loaded when its stage is entered).
        facts: What the run is (options, strategy, model, data: ``config.yaml``'s contents), kept in
            ``last.pt``; a resume whose facts differ is refused before anything is overwritten, since
            it would not continue the same run.
    """

    def __init__(self, out: Path, resume: bool = False, facts: dict[str, Any] | None = None) -> None:
        self.out, self.resume = Path(out), resume
        self.facts = run_dir.plain(facts) if facts is not None else None

    def saved_hint(self) -> str:
        last = self.out / "last.pt"
        return f" The last finished epoch is saved in {last}." if last.is_file() else ""

    def on_fit_start(self, trainer: Any, state: TrainState) -> None:
        if not self.resume:
            return
        last = self.out / "last.pt"
        if not last.is_file():
            raise ConfigError(f"Nothing to resume: {last} does not exist. Run without --resume first.")
        payload = load_checkpoint(last)
        self._check_same_run(payload, last)
        trainer.task.resume_weights(payload)
        state.history, state.epoch, state.resume = list(payload["history"]), int(payload["epoch"]) + 1, payload
        if state.history and (self.out / "best.pt").is_file():
            state.best_weights = load_checkpoint(self.out / "best.pt")["state_dict"]
        trainer.log(f"Resuming {self.out} at epoch {state.epoch + 1}/{trainer.epochs}.")

    def _check_same_run(self, payload: dict[str, Any], last: Path) -> None:
        if self.facts is None or "run_facts" not in payload:  # not recorded (older last.pt, or no facts given)
            return
        changes = run_dir.changed_facts(payload["run_facts"], self.facts)
        if changes:
            shown = "; ".join(changes[:6]) + (f"; and {len(changes) - 6} more" if len(changes) > 6 else "")
            raise ConfigError(
                f"Cannot resume {self.out}: this run is not the one saved in {last} ({shown}). Resume with "
                f"that run's options and data (recorded in {self.out / 'config.yaml'}), or start a new run "
                "in another --out."
            )

    def on_stage_start(self, trainer: Any, state: TrainState) -> None:
        if state.resume is not None and int(state.resume["stage"]) == state.stage:
            trainer.task.restore(state.resume)
        state.resume = None

    def on_epoch_end(self, trainer: Any, state: TrainState, row: dict[str, Any], stats: Any) -> None:
        if not trainer.fabric.is_global_zero:
            return
        task, spec = trainer.task, trainer.task.spec()
        if state.improved:
            atomic_save({"spec": spec, "state_dict": task.weights(), "epoch": row["epoch"]}, self.out / "best.pt")
        facts = {"spec": spec, "epoch": row["epoch"], "stage": state.stage, "history": state.history}
        if self.facts is not None:
            facts["run_facts"] = self.facts
        atomic_save({**task.checkpoint(), **facts}, self.out / "last.pt")


class RunDirWriter(Callback):
    """``config.yaml`` at the start, ``metrics.csv`` every epoch, ``best_metrics.json`` at a new best,
    learning curves at the end.

    Args:
        out: The run folder.
        facts: What ``config.yaml`` records (options, strategy, model spec, data).
    """

    def __init__(self, out: Path, facts: dict[str, Any]) -> None:
        self.out, self.facts = Path(out), facts

    def on_fit_start(self, trainer: Any, state: TrainState) -> None:
        if trainer.fabric.is_global_zero:
            run_dir.write_config(self.out, self.facts)

    def on_epoch_end(self, trainer: Any, state: TrainState, row: dict[str, Any], stats: Any) -> None:
        if not trainer.fabric.is_global_zero:
            return
        run_dir.write_metrics_csv(self.out, state.history)
        details = trainer.task.details()
        if state.improved and details:
            run_dir.write_json(self.out, "best_metrics.json", {"epoch": row["epoch"], **details})

    def on_fit_end(self, trainer: Any, state: TrainState) -> None:
        if trainer.fabric.is_global_zero and state.history and "val_acc" in state.history[0]:
            run_dir.plot_curves(self.out, state.history)


class Loggers(Callback):
    """Experiment trackers (TensorBoard, CSV, MLflow; see :mod:`transferkit.engine.loggers`), rank 0."""

    def __init__(self, loggers: list[Any], hyperparams: dict[str, Any]) -> None:
        self.loggers, self.hyperparams = loggers, hyperparams

    def on_fit_start(self, trainer: Any, state: TrainState) -> None:
        log_hyperparams(self.loggers, self.hyperparams)

    def on_epoch_end(self, trainer: Any, state: TrainState, row: dict[str, Any], stats: Any) -> None:
        log_epoch(self.loggers, row)

    def on_fit_end(self, trainer: Any, state: TrainState) -> None:
        for logger in self.loggers:
            logger.finalize("success")

    def on_exception(self, trainer: Any, state: TrainState) -> None:
        for logger in self.loggers:
            logger.finalize("failed")
