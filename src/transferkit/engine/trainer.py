"""The one training loop. Every method that trains — classification strategies, domain adaptation,
distillation, continual learning, few-shot meta-training, the LR range test — is a
:class:`TrainingTask` that says what one batch computes; :class:`Trainer` does the rest.

The loop, per epoch: callbacks' ``on_epoch_start`` (the :class:`~transferkit.engine.callbacks.StageSwitcher`
enters a new stage here), reseed every random source with ``(seed, epoch)``, run the task's
batches (mixed precision through Fabric, gradient accumulation, clipping, one non-finite-loss
guard), validate, record a row in :class:`~transferkit.engine.state.TrainState`, then the
callbacks' ``on_epoch_end`` (keep the best weights, checkpoint, log, stop early).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from lightning_fabric import Fabric
from lightning_fabric.wrappers import _FabricModule
from torch import Tensor, nn

from transferkit.engine.progress import batch_bar
from transferkit.engine.state import TrainState
from transferkit.errors import TrainingError
from transferkit.seeding import seed_everything


@dataclass
class StepOutput:
    """What a training step returns: the loss to differentiate and what to report about it.

    ``logits`` and ``targets`` (hard labels) give the training accuracy; ``report`` replaces
    ``loss`` in the epoch's mean when ``loss`` is a surrogate (first-order MAML, Reptile).
    """

    loss: Tensor
    count: int
    logits: Tensor | None = None
    targets: Tensor | None = None
    report: float | None = None


@dataclass
class EpochStats:
    """A training epoch's mean loss, accuracy (``None`` when the task reports none) and sample count."""

    loss: float
    accuracy: float | None
    seen: int
    next_epoch: int | None = None  # where to continue when this epoch finished its stage (a solved head)
    data_seconds: float | None = None  # time spent waiting for the next batch (loading, decoding, augmenting)

    def row(self) -> dict[str, float]:
        row = {"train_loss": round(self.loss, 6)}
        if self.accuracy is not None:
            row["train_acc"] = round(self.accuracy, 6)
        return row


class TrainingTask(ABC):
    """A method's side of training: its batches, one step's loss, its validation.

    Set ``module`` and ``optimizer`` (via :meth:`Trainer.setup`) in :meth:`setup` or, for staged
    methods, in :meth:`enter_stage`.
    """

    module: nn.Module
    optimizer: Any = None
    name: str = "training"

    def setup(self, trainer: Trainer) -> None:
        """Called once before the first epoch."""
        return None  # a hook: nothing to do by default

    def stage_at(self, epoch: int) -> int:
        """Index of the stage ``epoch`` belongs to (one stage by default)."""
        return 0

    def enter_stage(self, trainer: Trainer, index: int) -> None:
        """Set up stage ``index`` (trainable parameters, optimizer); called when the stage changes."""
        return None  # a hook: nothing to do by default

    def skip_to(self, epoch: int) -> int | None:
        """An epoch to continue at instead of running ``epoch`` (a stage already solved in one step)."""
        return None

    def prepare_epoch(self, epoch: int) -> None:
        """Work before the timed part of ``epoch``, after it is seeded (filling a feature cache)."""
        return None  # a hook: nothing to do by default

    @abstractmethod
    def batches(self, epoch: int) -> Iterable[Any]:
        """The training batches of ``epoch``."""

    @abstractmethod
    def training_step(self, batch: Any) -> StepOutput:
        """The loss of one batch (the trainer runs backward and the optimizer)."""

    def after_step(self) -> None:
        """Called after every optimizer step (per-step schedulers, weight averages)."""
        return None  # a hook: nothing to do by default

    def train_epoch(self, trainer: Trainer, epoch: int) -> EpochStats:
        """One epoch of training; override only for epochs that are not gradient steps."""
        return trainer.run_epoch(self, epoch)

    @abstractmethod
    def validate(self, epoch: int) -> dict[str, Any]:
        """Validation columns of the epoch's history row."""

    def end_epoch(self, row: dict[str, Any]) -> None:
        """Called with the finished row (per-epoch schedulers)."""
        return None  # a hook: nothing to do by default

    def weights(self) -> dict[str, Tensor]:
        """The weights validated, selected as best and saved."""
        return self.module.state_dict()

    def load_weights(self, weights: dict[str, Tensor]) -> None:
        self.module.load_state_dict(weights)

    def checkpoint(self) -> dict[str, Any]:
        """What ``last.pt`` needs beyond the state: the trained weights and the optimizer."""
        return {"state_dict": self.weights(), "optimizer": self.optimizer.state_dict()}

    def resume_weights(self, payload: dict[str, Any]) -> None:
        """Load the weights of a :meth:`checkpoint` (before the first epoch of a resumed run)."""
        self.load_weights(payload["state_dict"])

    def restore(self, payload: dict[str, Any]) -> None:
        """Load the optimizer part of :meth:`checkpoint` (after the stage it belongs to is set up)."""
        self.optimizer.load_state_dict(payload["optimizer"])

    def spec(self) -> dict[str, Any] | None:
        """How to rebuild the model from a checkpoint (``TransferModel.spec()``), if it is one."""
        return None

    def details(self) -> dict[str, Any]:
        """The last validation's full metrics, written to ``best_metrics.json`` at a new best."""
        return {}

    def describe(self, row: dict[str, Any], improved: bool) -> str:
        """The epoch's console line."""
        values = " ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "stage") and _numeric(v))
        return f"{self.name} epoch {row['epoch'] + 1}: {values}{' *' if improved else ''}"


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Trainer:
    """Runs a :class:`TrainingTask` for ``epochs`` epochs with callbacks.

    Args:
        fabric: Devices, precision and DDP (see :func:`transferkit.engine.distributed.make_fabric`).
        callbacks: Run in order at each hook; a :class:`StageSwitcher` is put first if absent.
        seed: Epoch ``e`` reseeds Python, NumPy and torch with ``(seed, e)`` (exact resume); ``None``: no
            reseeding (inner loops run inside another run, such as a few-shot episode's support fit).
        grad_accum: Optimizer step every ``grad_accum`` batches.
        max_grad_norm: Clip the gradient norm (``None``: no clipping).
        progress: A progress bar per epoch (rank 0).
        log: Where messages go (rank 0).
        precision: The precision ``fabric`` runs at, for messages.
    """

    def __init__(
        self,
        fabric: Fabric,
        callbacks: Sequence[Any] = (),
        seed: int | None = 0,
        grad_accum: int = 1,
        max_grad_norm: float | None = None,
        progress: bool = False,
        log: Callable[[str], None] = print,
        precision: str = "32-true",
    ) -> None:
        from transferkit.engine.callbacks import StageSwitcher

        has_switcher = any(isinstance(c, StageSwitcher) for c in callbacks)
        self.callbacks = list(callbacks) if has_switcher else [StageSwitcher(), *callbacks]
        self.fabric, self.seed, self.grad_accum = fabric, seed, grad_accum
        self.max_grad_norm, self.progress, self.precision = max_grad_norm, progress, precision
        self.log = log if fabric.is_global_zero else (lambda _message: None)
        self.task: TrainingTask | None = None
        self.epochs = 0

    def setup(self, module: nn.Module, optimizer: Any) -> tuple[nn.Module, Any]:
        """``module`` and ``optimizer`` prepared by Fabric (device, precision, DDP)."""
        return self.fabric.setup_module(module), self.fabric.setup_optimizers(optimizer)

    def call(self, hook: str, state: TrainState, *args: Any) -> None:
        """Run ``hook`` of every callback that has it, in order."""
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self, state, *args)

    def fit(self, task: TrainingTask, epochs: int, state: TrainState | None = None) -> TrainState:
        """Train ``task`` until ``epochs`` epochs are done or a callback stops the run."""
        state = state or TrainState()
        self.task, self.epochs = task, epochs
        task.setup(self)
        self.call("on_fit_start", state)
        try:
            while state.epoch < epochs and not state.should_stop:
                self._run_one(task, state)
        except BaseException:
            self.call("on_exception", state)
            raise
        self.call("on_fit_end", state)
        return state

    def _run_one(self, task: TrainingTask, state: TrainState) -> None:
        self.call("on_epoch_start", state)
        skip = task.skip_to(state.epoch)
        if skip is not None:
            state.epoch = skip
            return
        if self.seed is not None:
            seed_everything(self.seed, state.epoch)
        task.prepare_epoch(state.epoch)
        started = time.perf_counter()
        stats = task.train_epoch(self, state.epoch)
        seconds = time.perf_counter() - started
        state.train_seconds += seconds
        state.train_images += stats.seen
        row = {"epoch": state.epoch, "stage": state.stage, **stats.row(), **task.validate(state.epoch)}
        row.update(epoch_seconds=round(seconds, 3), images_per_second=round(stats.seen / max(seconds, 1e-9), 1))
        if stats.data_seconds is not None:  # the share of the epoch the model waited for data
            row["data_wait_fraction"] = round(stats.data_seconds / max(seconds, 1e-9), 3)
        task.end_epoch(row)
        state.history.append(row)
        self.call("on_epoch_end", state, row, stats)
        state.epoch = state.epoch + 1 if stats.next_epoch is None else stats.next_epoch

    def run_epoch(self, task: TrainingTask, epoch: int) -> EpochStats:
        """The task's batches of ``epoch`` through forward, backward and optimizer steps."""
        batches = task.batches(epoch)
        total = len(batches) if hasattr(batches, "__len__") else None
        if self.progress and self.fabric.is_global_zero:
            batches = batch_bar(batches, f"epoch {epoch + 1}/{self.epochs}")
        sums = torch.zeros(4, dtype=torch.float64)  # loss × count, correct, count, counted for accuracy
        task.optimizer.zero_grad(set_to_none=True)
        timed = TimedIterator(batches)
        for step, batch in enumerate(timed):
            accumulating = (step + 1) % self.grad_accum != 0 and step + 1 != total
            with self._no_sync(task.module, accumulating):
                with self.fabric.autocast():
                    out = task.training_step(batch)
                self._check_finite(out.loss, task, epoch, step)
                self.fabric.backward(out.loss / self.grad_accum)
            if not accumulating:
                self._optimizer_step(task)
            sums += torch.tensor(_batch_sums(out), dtype=torch.float64)
        stats = self._epoch_stats(sums)
        stats.data_seconds = timed.waited
        return stats

    def _no_sync(self, module: nn.Module, accumulating: bool) -> Any:
        if isinstance(module, _FabricModule):
            return self.fabric.no_backward_sync(module, enabled=accumulating)
        return nullcontext()

    def _optimizer_step(self, task: TrainingTask) -> None:
        if self.max_grad_norm is not None:
            self.fabric.clip_gradients(task.module, task.optimizer, max_norm=self.max_grad_norm)
        task.optimizer.step()
        task.optimizer.zero_grad(set_to_none=True)
        task.after_step()

    def _check_finite(self, loss: Tensor, task: TrainingTask, epoch: int, step: int) -> None:
        if torch.isfinite(loss):
            return
        lr = task.optimizer.param_groups[-1]["lr"]
        saved = next((c.saved_hint() for c in self.callbacks if hasattr(c, "saved_hint")), "")
        raise TrainingError(
            f"{task.name}: the loss became {loss.item()} at epoch {epoch + 1}, batch {step + 1} (lr={lr:.3g}, "
            f"precision={self.precision}). Lower --lr (see `transferkit lr-find`), set --max-grad-norm, "
            f"or use --precision 32-true.{saved}"
        )

    def _epoch_stats(self, sums: Tensor) -> EpochStats:
        if self.fabric.world_size > 1:
            sums = self.fabric.all_reduce(sums.to(self.fabric.device), reduce_op="sum").cpu()
        loss, correct, count, counted = (float(v) for v in sums)
        return EpochStats(loss / max(count, 1), correct / counted if counted else None, int(count))


class TimedIterator:
    """Iterates ``batches`` and adds up the seconds spent waiting for each next batch."""

    def __init__(self, batches: Iterable[Any]) -> None:
        self.iterator, self.waited = iter(batches), 0.0

    def __iter__(self) -> TimedIterator:
        return self

    def __next__(self) -> Any:
        started = time.perf_counter()
        try:
            return next(self.iterator)
        finally:
            self.waited += time.perf_counter() - started


def _batch_sums(out: StepOutput) -> list[float]:
    report = float(out.loss.detach()) if out.report is None else out.report
    if out.logits is None or out.targets is None:
        return [report * out.count, 0.0, float(out.count), 0.0]
    correct = int((out.logits.detach().argmax(1) == out.targets).sum())
    return [report * out.count, float(correct), float(out.count), float(out.count)]
