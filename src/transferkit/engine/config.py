"""Training options: one frozen dataclass, validated on creation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch

from transferkit.errors import ConfigError

SCHEDULERS = ("none", "step", "plateau", "cosine", "onecycle")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")
MONITORS = {"val_loss": "min", "val_acc": "max", "val_f1": "max"}


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Learning rates of layer groups are ``lr`` times the strategy's multipliers.

    Args:
        epochs: Total epochs over all strategy stages.
        batch_size: Per-process batch size (DDP: global = batch_size × processes).
        lr: Base learning rate (head, deepest group). ``transferkit lr-find`` suggests one.
        optimizer: ``adamw`` or ``sgd`` (Nesterov, ``momentum``).
        weight_decay: Decoupled for AdamW; not applied to biases and norm weights.
        scheduler: ``none``, ``step`` (``step_size``, ``gamma``), ``plateau`` (on ``monitor``),
            ``cosine`` (with ``warmup_epochs`` of linear warm-up) or ``onecycle``. Restarted at each stage.
        label_smoothing: Cross-entropy label smoothing.
        grad_accum: Optimizer step every ``grad_accum`` batches.
        max_grad_norm: Clip the gradient norm (``None``: no clipping).
        precision: ``auto`` (mixed precision on CUDA; on CPU fp32 training and bf16 autocast for cached frozen
            outputs where the CPU has native bf16), or explicit: ``32-true``, ``bf16-mixed``, ``16-mixed``.
        patience: Early stopping after this many epochs without improvement of ``monitor`` (``None``: off).
        monitor: ``val_loss``, ``val_acc`` or ``val_f1``; also picks the best checkpoint.
        mixup, cutmix: Beta-distribution alphas (0: off). Both on: one of them per batch.
        balance: Class imbalance: ``sampler`` (weighted sampling), ``loss`` (class-weighted loss) or ``none``.
        cache: ``auto``: while the whole backbone is frozen, compute its features once and train the head
            on them; while only its top groups train, cache the frozen bottom's outputs and run only the
            top (when the network can be cut there and the cache fits ``cache_max_gb``); ``off``: run the
            whole network every step (for benchmarks).
        cache_max_gb: Largest cache kept in memory; a bigger one is skipped with a message, or with
            ``cache_dir`` memory-mapped from disk (RAM then stays bounded whatever the dataset size).
        cache_dir: Folder where cached frozen outputs are written (batch by batch, atomically) and
            reused by later runs with the same weights, cut, images, transforms and precision (keyed by
            a content hash; anything else changed means a new entry). ``None``: memory only.
        cache_views: Augmented views cached per training image (1: the un-augmented image).
        train_bn: Let frozen BatchNorm layers update running statistics.
        head_solver: How a stage that trains only the head does it. ``lbfgs``: the linear head is solved
            to convergence on the cached features in one step (multinomial logistic regression by L-BFGS,
            L2 strength by cross-validation on the training split) and the stage ends; ``sgd``: the
            optimizer runs for the stage's epochs. ``lbfgs`` needs cached features and a linear head, and
            no Mixup/CutMix or class balancing; otherwise ``sgd`` is used.
        ema_decay: Keep an exponential moving average of the weights (timm's ``ModelEmaV3``, with
            warm-up) and validate, select and save it instead of the raw weights; 0 turns it off.
        loggers: Experiment trackers fed every epoch: ``tensorboard``, ``csv``, ``mlflow`` (written in the run folder).
        seed: Seeds data order, augmentation and initialisation; epoch ``e`` reseeds with ``(seed, e)``.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    scheduler: str = "cosine"
    warmup_epochs: float = 0.0
    step_size: int = 5
    gamma: float = 0.1
    label_smoothing: float = 0.0
    grad_accum: int = 1
    max_grad_norm: float | None = None
    precision: str = "auto"
    patience: int | None = None
    monitor: str = "val_loss"
    mixup: float = 0.0
    cutmix: float = 0.0
    balance: Literal["none", "sampler", "loss"] = "none"
    cache: Literal["auto", "off"] = "auto"
    cache_views: int = 1
    cache_max_gb: float = 4.0
    cache_dir: str | None = None
    train_bn: bool = False
    head_solver: Literal["lbfgs", "sgd"] = "lbfgs"
    ema_decay: float = 0.0
    loggers: tuple[str, ...] = ()
    seed: int = 0
    num_workers: int = 0
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    progress: bool = True
    top_k: int = 5
    channels_last: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "loggers", tuple(self.loggers))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", str(self.cache_dir))
        checks = [
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.optimizer in ("adamw", "sgd"), f"optimizer must be adamw or sgd, got {self.optimizer!r}"),
            (self.scheduler in SCHEDULERS, f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}"),
            (self.monitor in MONITORS, f"monitor must be one of {tuple(MONITORS)}, got {self.monitor!r}"),
            (self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}"),
            (self.cache_views >= 1, f"cache_views must be >= 1, got {self.cache_views}"),
            (self.cache_max_gb >= 0, f"cache_max_gb must be >= 0, got {self.cache_max_gb}"),
            (
                self.balance in ("none", "sampler", "loss"),
                f"balance must be none, sampler or loss, got {self.balance!r}",
            ),
            (self.cache in ("auto", "off"), f"cache must be auto or off, got {self.cache!r}"),
            (self.head_solver in ("lbfgs", "sgd"), f"head_solver must be lbfgs or sgd, got {self.head_solver!r}"),
            (0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}"),
            (
                set(self.loggers) <= {"tensorboard", "csv", "mlflow"},
                f"loggers must be among tensorboard, csv, mlflow, got {list(self.loggers)}",
            ),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.mixup >= 0 and self.cutmix >= 0, "mixup and cutmix alphas must be >= 0"),
            (self.patience is None or self.patience >= 1, f"patience must be >= 1 or None, got {self.patience}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message + ".")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["loggers"] = list(self.loggers)  # plain YAML
        return values


def _cpu_has_native_bf16() -> bool:
    # private op, kept on purpose: torch has no public query for AVX512-BF16/AMX, and guessing wrong
    # halves inference speed (or slows training); a missing op is treated as "no native bf16"
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def trains_on_gpu(config: TrainConfig) -> bool:
    """Whether ``config`` trains on a CUDA device (``accelerator`` auto or cuda, and one is there)."""
    return config.accelerator in ("auto", "cuda", "gpu") and torch.cuda.is_available()


def resolve_precision(precision: str, accelerator: str) -> str:
    """Training precision. ``auto`` → fp16 mixed on CUDA (bf16 where supported), fp32 on CPU.

    On CPU, bf16 autocast makes inference ~2× faster but training steps slower (measured on
    EfficientNet-Lite0: backward passes lose more than forward passes gain), so ``auto``
    trains in fp32 there and uses bf16 only for frozen parts (see :func:`frozen_autocast_dtype`).
    """
    if precision != "auto":
        return precision
    if accelerator in ("auto", "cuda", "gpu") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def frozen_autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for computing frozen outputs (feature caches): inference only, no backward.

    ``auto`` → bf16 on CPUs with native bf16 (AVX512-BF16/AMX) and on CUDA, fp16 on older CUDA;
    an explicit precision is followed as given.
    """
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and _cpu_has_native_bf16() else None
    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)


def autocast_for(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """``torch.autocast`` to ``dtype`` on ``device``, or a disabled one when ``dtype`` is ``None``."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
