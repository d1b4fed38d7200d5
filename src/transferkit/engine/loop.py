"""``fit``: train a :class:`TransferModel` with a strategy, on one process or many (DDP via Fabric).

Exact resume: epoch ``e`` reseeds every random source with ``(seed, e)`` and the sampler's
order depends only on ``(seed, e)``; ``last.pt`` (written atomically at the end of each
epoch) holds model, optimizer, scheduler and history. A run killed at any point continues
from its last finished epoch and produces the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2 as T
from lightning_fabric import Fabric
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from transferkit.data.sampler import EpochSampler
from transferkit.engine import run_dir
from transferkit.engine.cache import FeatureCache
from transferkit.engine.checkpoint import atomic_save, load_checkpoint
from transferkit.engine.config import MONITORS, TrainConfig, frozen_autocast_dtype, resolve_precision
from transferkit.engine.distributed import dataset_logits
from transferkit.engine.loggers import log_epoch, log_hyperparams, make_loggers
from transferkit.engine.metrics import Metrics, classification_metrics
from transferkit.engine.model import TransferModel
from transferkit.engine.optim import PER_STEP, build_optimizer, build_scheduler, param_groups
from transferkit.errors import ConfigError, TrainingError
from transferkit.strategies.base import Stage, Strategy
from transferkit.strategies.freezing import apply_bn_policy, set_trainable, trainable_fraction


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


def _seed_epoch(seed: int, epoch: int) -> None:
    value = (seed * 1_000_003 + epoch) % (2**31)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def _labels_of(dataset: Dataset) -> list[int]:
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise ConfigError("Class balancing needs a dataset with a .labels list (ImageFileDataset, TensorImageDataset).")
    return list(labels)


def _is_better(value: float, best: float, monitor: str) -> bool:
    return value < best if MONITORS[monitor] == "min" else value > best


def best_epoch_of(history: list[dict[str, Any]], monitor: str) -> int:
    best = 0
    for i, row in enumerate(history):
        if _is_better(row[monitor], history[best][monitor], monitor):
            best = i
    return history[best]["epoch"]


def _lone_last_batch(samples: int, batch_size: int) -> bool:
    """Whether an epoch would end with a batch of a single image (dropped when training)."""
    return samples > batch_size and samples % batch_size == 1


def _rows_since_best(history: list[dict[str, Any]], monitor: str) -> int:
    best = best_epoch_of(history, monitor)
    return len(history) - 1 - next(i for i, row in enumerate(history) if row["epoch"] == best)


def _save_epoch(out: Path, model, trainer, optimizer, scheduler, epoch, stage_index, history, improved) -> None:
    """``last.pt`` every epoch (raw weights, optimizer, scheduler, EMA: all a resume needs); ``best.pt`` if improved."""
    if improved:
        best = trainer.evaluated_model().state_dict()
        atomic_save({"spec": model.spec(), "state_dict": best, "epoch": epoch}, out / "best.pt")
    ema = trainer.ema
    atomic_save(
        {
            "spec": model.spec(),
            "state_dict": model.state_dict(),
            "epoch": epoch,
            "stage": stage_index,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "ema": ema.module.state_dict() if ema is not None else None,
            "ema_step": trainer.ema_step,
            "history": history,
        },
        out / "last.pt",
    )
    run_dir.write_metrics_csv(out, history)


def make_fabric(config: TrainConfig) -> Fabric:
    """A Fabric for this config: DDP when several devices or processes (e.g. under ``torchrun``)."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = config.devices > 1 or config.num_nodes > 1 or world > 1
    devices = config.devices if world == 1 else max(config.devices, world // max(1, config.num_nodes))
    fabric = Fabric(
        accelerator=config.accelerator,
        devices=devices,
        num_nodes=config.num_nodes,
        strategy="ddp" if distributed else "auto",
        precision=resolve_precision(config.precision, config.accelerator),  # type: ignore[arg-type]
    )
    fabric.launch()
    return fabric


class _Trainer:
    """One ``fit`` call's state; kept small and private. Use :func:`fit`."""

    def __init__(
        self,
        model: TransferModel,
        strategy: Strategy,
        train: Dataset,
        val: Dataset,
        config: TrainConfig,
        fabric: Fabric,
        out: Path | None,
        train_views: list[Dataset] | None,
    ) -> None:
        self.raw = model
        self.strategy = strategy
        self.train_set = train
        self.val_set = val
        self.config = config
        self.fabric = fabric
        self.out = out
        self.groups = model.backbone.layer_groups()
        in_groups = {id(p) for g in self.groups for p in g.parameters()}
        # backbone parameters outside every layer group: the ones PEFT methods add
        self.extra_params = [p for p in model.backbone.parameters() if id(p) not in in_groups]
        self.stages = strategy.stages(config.epochs, len(self.groups))
        self.num_classes = len(model.classes)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        model.to(fabric.device)
        self.cache = FeatureCache(
            fabric,
            model.backbone,
            train_views or [train],
            val,
            config.batch_size,
            config.num_workers,
            config.channels_last,
            config.progress,
            frozen_autocast_dtype(config.precision, fabric.device),
        )
        weight = None
        if config.balance != "none":
            counts = np.bincount(_labels_of(train), minlength=self.num_classes).astype(np.float64)
            if (counts == 0).any():
                missing = [model.classes[i] for i in np.flatnonzero(counts == 0)]
                raise ConfigError(f"Classes {missing} have no training images; balancing is undefined.")
            self.sample_weights = (1.0 / counts)[_labels_of(train)] if config.balance == "sampler" else None
            if config.balance == "loss":
                weight = torch.as_tensor(counts.sum() / (len(counts) * counts), dtype=torch.float32)
        else:
            self.sample_weights = None
        self.criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing).to(fabric.device)
        mixers = []
        if config.mixup > 0:
            mixers.append(T.MixUp(alpha=config.mixup, num_classes=self.num_classes))
        if config.cutmix > 0:
            mixers.append(T.CutMix(alpha=config.cutmix, num_classes=self.num_classes))
        self.mixer: Callable | None = T.RandomChoice(mixers) if mixers else None
        self.stage: Stage | None = None
        self.ema: Any = None
        self.ema_step = 0
        self.solved = ""

    # --- pieces -------------------------------------------------------------------------------
    def cache_level(self, stage: Stage) -> tuple[int | None, str]:
        """How many frozen groups' outputs are cached during ``stage`` (``None``: none), and why.

        ``len(groups)``: the head trains on cached features; ``k``: the network above the
        first ``k`` groups trains on their cached outputs.
        """
        num_groups = len(self.groups)
        frozen = num_groups - stage.num_trainable(num_groups)
        if (num_groups and frozen == 0) or self.config.cache == "off":
            return None, ""
        if self.mixer is not None:
            return None, "no cache: Mixup/CutMix mix images, so frozen outputs change every step"
        if self.config.train_bn and any(True for g in self.groups[:frozen] for _ in g.batchnorms()):
            return None, "no cache: train_bn lets frozen BatchNorm statistics change"
        trainable_below = any(p.requires_grad for g in self.groups[:frozen] for p in g.parameters())
        if trainable_below or any(p.requires_grad for p in self.extra_params):
            return None, "no cache: parameters inside the frozen part train (PEFT)"
        if frozen < num_groups and self.raw.backbone.split(frozen) is None:
            return None, f"no cache: {self.raw.backbone.name} cannot be cut after group {frozen} (runs whole)"
        key = None if frozen == num_groups else frozen
        gigabytes = self.cache.bytes_needed(key) / 2**30
        if gigabytes > self.config.cache_max_gb:
            return None, f"no cache: it would take {gigabytes:.1f} GB > cache_max_gb={self.config.cache_max_gb}"
        if frozen == num_groups:
            return frozen, "head on cached features"
        return frozen, f"top on cached outputs of the {frozen} frozen groups ({gigabytes:.2f} GB)"

    def inputs_kwargs(self, level: int | None) -> dict[str, Any]:
        if level is None:
            return {}
        return {"from_features": True} if level == len(self.groups) else {"from_split": level}

    def cached(self, level: int, epoch: int | None) -> tuple[Tensor, Tensor]:
        """Cached train view of ``epoch`` (``None``: validation set) at ``level``."""
        key = None if level == len(self.groups) else level
        return self.cache.validation(key) if epoch is None else self.cache.train(epoch, key)

    def loader(self, dataset: Dataset, epoch: int, shuffle: bool = True) -> DataLoader:
        sampler = EpochSampler(
            len(dataset),
            seed=self.config.seed,
            shuffle=shuffle,
            weights=self.sample_weights if shuffle else None,
            rank=self.fabric.global_rank,
            world_size=self.fabric.world_size,
            epoch=epoch,
        )
        workers = 0 if isinstance(dataset, TensorDataset) else self.config.num_workers
        loader = DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=workers,
            generator=torch.Generator().manual_seed(self.config.seed * 7919 + epoch),
            # a last training batch of one image breaks BatchNorm in heads (MLP) and carries no statistics
            drop_last=shuffle and _lone_last_batch(len(sampler), self.config.batch_size),
        )
        return self.fabric.setup_dataloaders(loader, use_distributed_sampler=False)

    def setup_stage(self, stage: Stage, steps_per_epoch: int) -> tuple[nn.Module, Any, Any]:
        self.stage = stage
        set_trainable(self.groups, stage.num_trainable(len(self.groups)))
        self.raw.head.requires_grad_(True)
        self.strategy.configure_trainable(self.raw)
        groups = param_groups(self.groups, self.raw.head, stage, self.config, self.extra_params)
        optimizer = build_optimizer(groups, self.config)
        scheduler = build_scheduler(optimizer, self.config, stage.end - stage.start, steps_per_epoch)
        module = self.fabric.setup_module(self.raw)
        optimizer = self.fabric.setup_optimizers(optimizer)
        self.ema, self.ema_step = None, 0
        if self.config.ema_decay > 0:  # restarted per stage: a stage may begin with a solved head
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.raw, decay=self.config.ema_decay, use_warmup=True, warmup_power=0.75)
        return module, optimizer, scheduler

    def evaluated_model(self) -> nn.Module:
        """The weights that are validated, selected and saved: the EMA's when it is on."""
        return self.ema.module if self.ema is not None else self.raw

    def solvable(self, stage: Stage, level: int | None) -> bool:
        """Whether this head-only stage is solved in closed form instead of trained by SGD (see ``head_solver``)."""
        num_groups = len(self.groups)
        return (
            self.config.head_solver == "lbfgs"
            and level == num_groups
            and stage.num_trainable(num_groups) == 0
            and isinstance(getattr(self.raw.head, "fc", None), nn.Linear)
            and getattr(self.raw.head, "in_features", None) == self.raw.head.fc.in_features
            and self.mixer is None
            and self.config.balance == "none"
            and not any(p.requires_grad for p in self.extra_params)
        )

    def solve_head(self, epoch: int) -> tuple[float, float, int]:
        """Fit the linear head to convergence on the cached training features (L2 by CV on view 0)."""
        from transferkit.heads.probe import linear_probe, load_into_head

        level = len(self.groups)
        views = [self.cached(level, view) for view in range(len(self.cache.views))]
        smoothing = self.config.label_smoothing  # the loss the next stage trains with
        chosen = linear_probe(*views[0], self.num_classes, seed=self.config.seed, label_smoothing=smoothing)
        probe = chosen
        if len(views) > 1:  # augmented views: more rows for the fit, C from the un-leaked first view
            features, labels = torch.cat([v[0] for v in views]), torch.cat([v[1] for v in views])
            probe = linear_probe(features, labels, self.num_classes, Cs=(chosen.C,), label_smoothing=smoothing)
        load_into_head(probe, self.raw.head)
        features, labels = views[0]
        logits = probe.logits(features)
        self.solved = f"C={chosen.C:g}, 3-fold CV accuracy {chosen.cv_accuracy:.3f}"
        accuracy = float((logits.argmax(1) == labels).float().mean())
        return float(nn.functional.cross_entropy(logits, labels)), accuracy, len(labels)

    def steps_per_epoch(self) -> int:
        per_rank = math.ceil(len(self.train_set) / self.fabric.world_size)
        batches = math.ceil(per_rank / self.config.batch_size)
        batches -= _lone_last_batch(per_rank, self.config.batch_size)  # dropped by loader()
        return math.ceil(batches / self.config.grad_accum)

    def train_epoch(
        self, module: nn.Module, optimizer: Any, scheduler: Any, epoch: int, level: int | None
    ) -> tuple[float, float, int]:
        config = self.config
        cached = level is not None
        if cached:
            features, labels = self.cached(level, epoch)
            loader = self.loader(TensorDataset(features, labels), epoch)
        else:
            loader = self.loader(self.train_set, epoch)
        module.train()
        apply_bn_policy(self.groups, config.train_bn, self.raw.backbone)
        if self.stage.bn_eval:  # keep pretraining statistics in every group (LP-FT's fine-tuning stage)
            for group in self.groups:
                for bn in group.batchnorms():
                    bn.eval()
        total_loss, correct, seen = 0.0, 0, 0
        batches = loader
        if config.progress and self.fabric.is_global_zero:
            from tqdm.auto import tqdm

            batches = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, unit="batch")
        optimizer.zero_grad(set_to_none=True)
        n_batches = len(loader)
        for step, (inputs, targets) in enumerate(batches):
            hard = targets
            if self.mixer is not None and not cached:
                inputs, targets = self.mixer(inputs, targets)
            if config.channels_last and inputs.ndim == 4:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            accumulating = (step + 1) % config.grad_accum != 0 and step + 1 != n_batches
            with self.fabric.no_backward_sync(module, enabled=accumulating):
                logits = module(inputs, **self.inputs_kwargs(level))
                loss = self.criterion(logits.float(), targets)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"The loss became {loss.item()} at epoch {epoch + 1}, batch {step + 1} "
                        f"(lr={optimizer.param_groups[-1]['lr']:.3g}, "
                        f"precision={resolve_precision(config.precision, config.accelerator)}). "
                        "Lower --lr (see `transferkit lr-find`), set --max-grad-norm, or use --precision 32-true. "
                        f"{'The last finished epoch is saved in ' + str(self.out / 'last.pt') if self.out else ''}"
                    )
                self.fabric.backward(loss / config.grad_accum)
            if not accumulating:
                if config.max_grad_norm is not None:
                    self.fabric.clip_gradients(module, optimizer, max_norm=config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if scheduler is not None and config.scheduler in PER_STEP:
                    scheduler.step()
                if self.ema is not None:
                    self.ema.update(self.raw, step=self.ema_step)
                    self.ema_step += 1
            total_loss += loss.item() * len(hard)
            correct += int((logits.argmax(1) == hard).sum())
            seen += len(hard)
        stats = torch.tensor([total_loss, correct, seen], dtype=torch.float64, device=self.fabric.device)
        stats = self.fabric.all_reduce(stats, reduce_op="sum") if self.fabric.world_size > 1 else stats
        return float(stats[0] / stats[2]), float(stats[1] / stats[2]), int(stats[2])

    def evaluate(self, module: nn.Module, level: int | None) -> tuple[float, Metrics, Tensor]:
        if self.ema is not None:
            module = self.ema.module
        module.eval()
        net = self.evaluated_model()
        if level is not None:
            features, labels = self.cached(level, None)
            kwargs = self.inputs_kwargs(level)
            with torch.inference_mode(), self.fabric.autocast():
                logits = torch.cat(
                    [
                        net(chunk.to(self.fabric.device), **kwargs).float().cpu()
                        for chunk in features.split(self.config.batch_size)
                    ]
                )
        else:
            logits, labels = dataset_logits(
                self.fabric,
                module,
                self.val_set,
                self.config.batch_size,
                self.config.num_workers,
                self.config.channels_last,
            )
        loss = float(nn.functional.cross_entropy(logits, labels))
        probs = logits.softmax(1)
        return loss, classification_metrics(labels.numpy(), probs.numpy(), self.config.top_k), probs


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

    Example:
        >>> from transferkit import build_model, create_strategy, TrainConfig, fit  # doctest: +SKIP
        >>> result = fit(build_model("resnet18", 3, weights=None), create_strategy("fine-tune"),
        ...              train_ds, val_ds, TrainConfig(epochs=2))  # doctest: +SKIP
    """
    config = config or TrainConfig()
    fabric = fabric or make_fabric(config)
    strategy.prepare(model)
    out_path = run_dir.prepare(out) if out is not None and fabric.is_global_zero else (Path(out) if out else None)
    trainer = _Trainer(model, strategy, train, val, config, fabric, out_path, train_views)
    history: list[dict[str, Any]] = []
    start_epoch, saved_stage, state = 0, -1, None
    if resume:
        if out_path is None or not (out_path / "last.pt").is_file():
            raise ConfigError(f"Nothing to resume: {out_path}/last.pt does not exist. Run without --resume first.")
        state = load_checkpoint(out_path / "last.pt")
        model.load_state_dict(state["state_dict"])
        history, saved_stage = list(state["history"]), int(state["stage"])
        start_epoch = int(state["epoch"]) + 1
        log(f"Resuming {out_path} at epoch {start_epoch + 1}/{config.epochs}.")
    if fabric.is_global_zero and out_path is not None:
        run_dir.write_config(
            out_path,
            {
                "train": config.to_dict(),
                "strategy": {
                    "name": strategy.name,
                    **{k: v for k, v in vars(strategy).items() if not k.startswith("_")},
                },
                "model": model.spec(),
                **(run_config or {}),
            },
        )

    loggers = make_loggers(config.loggers, out_path) if fabric.is_global_zero else []
    log_hyperparams(loggers, {"train": config.to_dict(), "strategy": strategy.name})
    # the first epoch is always the best so far, so a fresh run needs no copy yet
    best_state = None
    if history and out_path is not None and (out_path / "best.pt").is_file():
        best_state = load_checkpoint(out_path / "best.pt")["state_dict"]
    module = optimizer = scheduler = None
    current_stage, level = -1, None
    stopped_early, train_seconds, train_images = False, 0.0, 0
    epoch = start_epoch
    while epoch < config.epochs:
        stage_index, stage = strategy.stage_at(epoch, config.epochs, len(trainer.groups))
        if stage_index != current_stage:
            module, optimizer, scheduler = trainer.setup_stage(stage, trainer.steps_per_epoch())
            if state is not None and saved_stage == stage_index:
                optimizer.load_state_dict(state["optimizer"])
                if scheduler is not None and state.get("scheduler") is not None:
                    scheduler.load_state_dict(state["scheduler"])
                if trainer.ema is not None and state.get("ema") is not None:
                    trainer.ema.module.load_state_dict(state["ema"])
                    trainer.ema_step = int(state["ema_step"])
            state = None
            current_stage = stage_index
            level, why = trainer.cache_level(stage)
            trainable, total = trainable_fraction(model)
            if fabric.is_global_zero:
                log(
                    f"Stage {stage_index + 1}/{len(trainer.stages)} (epochs {stage.start + 1}-{stage.end}): "
                    f"{stage.num_trainable(len(trainer.groups))}/{len(trainer.groups)} layer groups trainable, "
                    f"{trainable:,}/{total:,} parameters ({100 * trainable / total:.2f}%)"
                    f"{', ' + why if why else ''}"
                    f"{', linear head solved by L-BFGS' if trainer.solvable(stage, level) else ''}."
                )
        solved = trainer.solvable(stage, level)
        if solved and epoch > stage.start:  # resumed inside a stage that was solved at its first epoch
            epoch = stage.end
            continue
        _seed_epoch(config.seed, epoch)
        if level is not None:
            with torch.random.fork_rng():  # a view's augmentations depend on the view only
                torch.manual_seed(config.seed * 7919 + epoch % len(trainer.cache.views))
                trainer.cached(level, epoch)
        started = time.perf_counter()
        if solved:
            train_loss, train_acc, seen = trainer.solve_head(epoch)
        else:
            train_loss, train_acc, seen = trainer.train_epoch(module, optimizer, scheduler, epoch, level)
        seconds = time.perf_counter() - started
        train_seconds += seconds
        train_images += seen
        val_loss, metrics, _ = trainer.evaluate(module, level)
        if scheduler is not None and config.scheduler == "step":
            scheduler.step()
        elif scheduler is not None and config.scheduler == "plateau":
            scheduler.step({"val_loss": val_loss, "val_acc": metrics.accuracy, "val_f1": metrics.f1}[config.monitor])
        row = {
            "epoch": epoch,
            "stage": stage_index,
            "train_loss": round(train_loss, 6),
            "train_acc": round(train_acc, 6),
            "val_loss": round(val_loss, 6),
            "val_acc": round(metrics.accuracy, 6),
            "val_f1": round(metrics.f1, 6),
            f"val_top{metrics.top_k}": round(metrics.top_k_accuracy, 6),
            "lr": optimizer.param_groups[-1]["lr"],
            "trainable_params": trainable,
            "epoch_seconds": round(seconds, 3),
            "images_per_second": round(seen / max(seconds, 1e-9), 1),
            "cached": level is not None,
        }
        history.append(row)
        log_epoch(loggers, row)
        improved = best_epoch_of(history, config.monitor) == epoch
        if improved:
            best_state = copy.deepcopy(trainer.evaluated_model().state_dict())
        if fabric.is_global_zero:
            what = f"head solved ({trainer.solved})" if solved else f"{seen / max(seconds, 1e-9):.0f} img/s"
            log(
                f"epoch {epoch + 1:3d}/{config.epochs} train loss {train_loss:.4f} acc {train_acc:.3f} | val loss "
                f"{val_loss:.4f} acc {metrics.accuracy:.3f} f1 {metrics.f1:.3f} | {what}{' *' if improved else ''}"
            )
            if out_path is not None:
                _save_epoch(out_path, model, trainer, optimizer, scheduler, epoch, stage_index, history, improved)
                if improved:
                    run_dir.write_json(out_path, "best_metrics.json", {"epoch": epoch, **vars(metrics)})
        epoch = stage.end if solved else epoch + 1
        if config.patience is not None and _rows_since_best(history, config.monitor) >= config.patience:
            stopped_early = True
            if fabric.is_global_zero:
                log(f"Early stopping: {config.monitor} has not improved for {config.patience} epochs.")
            break

    best_epoch = best_epoch_of(history, config.monitor)
    if best_state is not None:
        model.load_state_dict(best_state)
    trainer.ema = None  # the model now holds the selected (EMA) weights
    module = fabric.setup_module(model) if module is None else module
    # the cached outputs still hold for the best weights if those groups were frozen at the best epoch too
    num_groups = len(trainer.groups)
    best_frozen = num_groups - strategy.stage_at(best_epoch, config.epochs, num_groups)[1].num_trainable(num_groups)
    _, best_metrics, _ = trainer.evaluate(module, level if level is not None and level <= best_frozen else None)
    for logger in loggers:
        logger.finalize("success")
    if fabric.is_global_zero and out_path is not None:
        run_dir.plot_curves(out_path, history)
        run_dir.plot_confusion(out_path, best_metrics.confusion, model.classes)
    ips = train_images / train_seconds if train_seconds else 0.0
    return FitResult(
        model,
        history,
        best_epoch,
        best_metrics,
        out_path,
        train_seconds,
        ips,
        stopped_early,
        {"cache_seconds": trainer.cache.seconds, "cache_images": trainer.cache.images},
    )
