"""``fit``: train a :class:`TransferModel` with a strategy, on one process or many (DDP via Fabric).

The algorithm is the :class:`~transferkit.engine.classification.ClassificationTask` run by the one
:class:`~transferkit.engine.trainer.Trainer`; this module composes them with the run folder's
callbacks. Exact resume: epoch ``e`` reseeds every random source with ``(seed, e)`` and the
sampler's order depends only on ``(seed, e)``; ``last.pt`` (written atomically at the end of each
epoch) holds model, optimizer, scheduler and history. A run killed at any point continues from
its last finished epoch and produces the same numbers as an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_fabric import Fabric
from torch.utils.data import Dataset

from transferkit.engine import run_dir
from transferkit.engine.callbacks import (
    BestWeights,
    Callback,
    Checkpointer,
    ConsoleLog,
    EarlyStopping,
    Loggers,
    RunDirWriter,
)
from transferkit.engine.classification import ClassificationTask
from transferkit.engine.config import MONITORS, TrainConfig, resolve_precision
from transferkit.engine.distributed import make_fabric
from transferkit.engine.loggers import make_loggers
from transferkit.engine.metrics import Metrics
from transferkit.engine.model import TransferModel
from transferkit.engine.state import TrainState
from transferkit.engine.trainer import Trainer
from transferkit.errors import ConfigError
from transferkit.strategies.base import Strategy

__all__ = ["FitResult", "fit", "make_fabric"]


@dataclass
class FitResult:
    """What a run produced. ``model`` holds the best epoch's weights."""

    model: TransferModel
    history: list[dict[str, Any]]
    best_epoch: int
    metrics: Metrics
    run_dir: Path | None
    train_seconds: float
    images_per_second: float
    stopped_early: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    test_metrics: Metrics | None = None  # set after selection when the data has a test split


def fit(
    model: TransferModel,
    strategy: Strategy,
    train: Dataset,
    val: Dataset,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    train_views: list[Dataset] | None = None,
    fabric: Fabric | None = None,
    run_config: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    callbacks: Sequence[Callback] = (),
    make_task: Callable[..., ClassificationTask] = ClassificationTask,
) -> FitResult:
    """Train ``model`` on ``train`` with ``strategy``, validating on ``val`` every epoch.

    Args:
        model: Backbone + head (see :func:`transferkit.build_model`).
        strategy: Which groups train when (see :mod:`transferkit.strategies`).
        train: Training dataset (training transform).
        val: Validation dataset (evaluation transform).
        config: Training options.
        out: Run folder for ``config.yaml``, ``metrics.csv``, ``curves.png``, ``best.pt``, ``last.pt``.
        resume: Continue from ``out/last.pt``.
        train_views: Datasets whose features are cached for head-only stages (default: ``train``);
            pass the training images with the evaluation transform for deterministic features.
        fabric: A ready Fabric (default: made from ``config``).
        run_config: Extra facts written to ``config.yaml`` (data paths, backbone...).
        log: Where the one-line-per-epoch summary goes.
        callbacks: More callbacks, run after the built-in ones at every hook.
        make_task: Builds the task from ``(model, strategy, train, val, config, fabric, train_views, log)``:
            :class:`ClassificationTask` or a subclass (FixMatch's adds unlabelled images to its steps).

    Example:
        >>> from transferkit import build_model, create_strategy, TrainConfig, fit  # doctest: +SKIP
        >>> result = fit(build_model("resnet18", 3, weights=None), create_strategy("fine-tune"),
        ...              train_ds, val_ds, TrainConfig(epochs=2))  # doctest: +SKIP
    """
    config = config or TrainConfig()
    fabric = fabric or make_fabric(config)
    strategy.prepare(model)
    out_path = run_dir.prepare(out) if out is not None and fabric.is_global_zero else (Path(out) if out else None)
    if resume and out_path is None:
        raise ConfigError("Nothing to resume: no run folder given. Pass the folder of the run (--out).")
    task = make_task(model, strategy, train, val, config, fabric, train_views, log)
    facts = run_dir.run_facts(config, strategy, model.spec(), run_config)
    trainer = Trainer(
        fabric,
        [*_run_callbacks(config, out_path, resume, facts, fabric), *callbacks],
        seed=config.seed,
        grad_accum=config.grad_accum,
        max_grad_norm=config.max_grad_norm,
        progress=config.progress,
        log=log,
        precision=resolve_precision(config.precision, config.accelerator),
    )
    state = trainer.fit(task, config.epochs, TrainState(config.monitor, MONITORS[config.monitor]))
    metrics = task.final_metrics(state.best_epoch)
    if fabric.is_global_zero and out_path is not None:
        run_dir.plot_confusion(out_path, metrics.confusion, model.classes)
    ips = state.train_images / state.train_seconds if state.train_seconds else 0.0
    cache = task.cache
    if cache.reused_images:
        log(f"Feature cache: the frozen outputs of {cache.reused_images} images were read from {config.cache_dir}.")
    wait = cache.timing["data_seconds"] / cache.seconds if cache.seconds else 0.0
    extra = {"cache_seconds": cache.seconds, "cache_images": cache.images, "cache_data_wait_fraction": round(wait, 3)}
    extra["cache_reused_images"] = cache.reused_images  # read from cache_dir instead of computed
    return FitResult(
        model, state.history, state.best_epoch, metrics, out_path, state.train_seconds, ips, state.stopped_early, extra
    )


def _run_callbacks(
    config: TrainConfig, out: Path | None, resume: bool, facts: dict[str, Any], fabric: Fabric
) -> list[Callback]:
    """Keep the best weights, print the epoch's line, save it (checkpoints, run folder), log it, stop early."""
    callbacks: list[Callback] = [BestWeights(), ConsoleLog()]
    if out is not None:
        callbacks += [Checkpointer(out, resume, facts), RunDirWriter(out, facts)]
    loggers = make_loggers(config.loggers, out) if fabric.is_global_zero else []
    callbacks.append(Loggers(loggers, {"train": config.to_dict(), "strategy": facts["strategy"]["name"]}))
    if config.patience is not None:
        callbacks.append(EarlyStopping(config.patience))
    return callbacks
