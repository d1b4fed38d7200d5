"""Image classification as a :class:`~transferkit.engine.trainer.TrainingTask`: a
:class:`TransferModel` trained stage by stage as its :class:`Strategy` says.

Frozen parts run once: while the whole backbone is frozen its features are cached and the
head trains on them (or a linear head is solved by L-BFGS in one step); while only top groups
train, the frozen bottom's outputs are cached (see :meth:`ClassificationTask.cache_level`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2 as T
from lightning_fabric import Fabric
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from transferkit.data.sampler import EpochItems, EpochSampler
from transferkit.engine.cache import FeatureCache
from transferkit.engine.config import TrainConfig, frozen_autocast_dtype
from transferkit.engine.distributed import dataset_logits
from transferkit.engine.feature_store import FeatureStore
from transferkit.engine.metrics import Metrics, classification_metrics
from transferkit.engine.model import TransferModel
from transferkit.engine.optim import PER_STEP, build_optimizer, build_scheduler, param_groups
from transferkit.engine.staged import StrategyTask
from transferkit.engine.trainer import EpochStats, StepOutput, Trainer
from transferkit.errors import ConfigError
from transferkit.seeding import derive_seed
from transferkit.strategies.base import Stage, Strategy
from transferkit.strategies.freezing import apply_bn_policy, trainable_fraction


def _lone_last_batch(samples: int, batch_size: int) -> bool:
    """Whether an epoch would end with a batch of a single image (dropped when training)."""
    return samples > batch_size and samples % batch_size == 1


def _labels_of(dataset: Dataset) -> list[int]:
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise ConfigError("Class balancing needs a dataset with a .labels list (ImageFileDataset, TensorImageDataset).")
    return list(labels)


def _mixer(config: TrainConfig, num_classes: int) -> Callable | None:
    mixers = []
    if config.mixup > 0:
        mixers.append(T.MixUp(alpha=config.mixup, num_classes=num_classes))
    if config.cutmix > 0:
        mixers.append(T.CutMix(alpha=config.cutmix, num_classes=num_classes))
    return T.RandomChoice(mixers) if mixers else None


class ClassificationTask(StrategyTask):
    """One ``fit`` call's model, data and per-stage optimizer. Use :func:`transferkit.fit`."""

    name = "fit"

    def __init__(
        self,
        model: TransferModel,
        strategy: Strategy,
        train: Dataset,
        val: Dataset,
        config: TrainConfig,
        fabric: Fabric,
        train_views: list[Dataset] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.raw, self.strategy, self.train_set, self.val_set = model, strategy, train, val
        self.config, self.fabric, self.log = config, fabric, log
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
            FeatureStore(config.cache_dir) if config.cache_dir else None,
        )
        self.sample_weights, self.criterion = self._balance()
        self._loaders: dict[tuple[int, bool], tuple[EpochSampler, DataLoader]] = {}
        self.mixer = _mixer(config, self.num_classes)
        self.module: Any = None
        self.scheduler: Any = None
        self.stage: Stage | None = None
        self.level: int | None = None
        self.ema: Any = None
        self.ema_step = 0
        self.solved = ""
        self.last_metrics: Metrics | None = None

    def _balance(self) -> tuple[np.ndarray | None, nn.Module]:
        """Per-sample weights for ``balance=sampler`` and the (class-weighted for ``loss``) criterion."""
        config, weight, sample_weights = self.config, None, None
        if config.balance != "none":
            labels = _labels_of(self.train_set)
            counts = np.bincount(labels, minlength=self.num_classes).astype(np.float64)
            if (counts == 0).any():
                missing = [self.raw.classes[i] for i in np.flatnonzero(counts == 0)]
                raise ConfigError(f"Classes {missing} have no training images; balancing is undefined.")
            if config.balance == "sampler":
                sample_weights = (1.0 / counts)[labels]
            else:
                weight = torch.as_tensor(counts.sum() / (len(counts) * counts), dtype=torch.float32)
        criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)
        return sample_weights, criterion.to(self.fabric.device)

    # --- stages -------------------------------------------------------------------------------
    def enter_stage(self, trainer: Trainer, index: int) -> None:
        stage = self.unfreeze_for(index)
        self.strategy.configure_trainable(self.raw)
        groups = param_groups(self.groups, self.raw.head, stage, self.config, self.extra_params)
        optimizer = build_optimizer(groups, self.config)
        self.scheduler = build_scheduler(optimizer, self.config, stage.end - stage.start, self.steps_per_epoch())
        self.module, self.optimizer = trainer.setup(self.raw, optimizer)
        self.ema, self.ema_step = None, 0
        if self.config.ema_decay > 0:  # restarted per stage: a stage may begin with a solved head
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.raw, decay=self.config.ema_decay, use_warmup=True, warmup_power=0.75)
        self.level, why = self.cache_level(stage)
        self._log_stage(index, stage, why)

    def _log_stage(self, index: int, stage: Stage, why: str) -> None:
        trainable, total = trainable_fraction(self.raw)
        n = len(self.groups)
        self.log(
            f"Stage {index + 1}/{len(self.stages)} (epochs {stage.start + 1}-{stage.end}): "
            f"{stage.num_trainable(n)}/{n} layer groups trainable, "
            f"{trainable:,}/{total:,} parameters ({100 * trainable / total:.2f}%)"
            f"{', ' + why if why else ''}"
            f"{', linear head solved by L-BFGS' if self.solvable() else ''}."
        )

    def cache_level(self, stage: Stage) -> tuple[int | None, str]:
        """How many frozen groups' outputs are cached during ``stage`` (``None``: none), and why.

        ``len(groups)``: the head trains on cached features; ``k``: the network above the
        first ``k`` groups trains on their cached outputs.
        """
        num_groups = len(self.groups)
        frozen = num_groups - stage.num_trainable(num_groups)
        if (num_groups and frozen == 0) or self.config.cache == "off":
            return None, ""
        why_not = self._cache_blocker(frozen)
        if why_not:
            return None, why_not
        gigabytes = self.cache.bytes_needed(None if frozen == num_groups else frozen) / 2**30
        too_big = gigabytes > self.config.cache_max_gb
        if too_big and self.cache.store is None:
            return None, (
                f"no cache: it would take {gigabytes:.1f} GB > cache_max_gb={self.config.cache_max_gb} "
                "(cache_dir keeps it on disk instead)"
            )
        self.cache.memory_mapped = too_big
        where = f", memory-mapped from {self.config.cache_dir}" if too_big else ""
        if frozen == num_groups:
            return frozen, f"head on cached features{where}"
        return frozen, f"top on cached outputs of the {frozen} frozen groups ({gigabytes:.2f} GB{where})"

    def _cache_blocker(self, frozen: int) -> str:
        """Why the outputs of the first ``frozen`` groups change during training ('' if they do not)."""
        if self.mixer is not None:
            return "no cache: Mixup/CutMix mix images, so frozen outputs change every step"
        if self.config.train_bn and any(True for g in self.groups[:frozen] for _ in g.batchnorms()):
            return "no cache: train_bn lets frozen BatchNorm statistics change"
        trainable_below = any(p.requires_grad for g in self.groups[:frozen] for p in g.parameters())
        if trainable_below or any(p.requires_grad for p in self.extra_params):
            return "no cache: parameters inside the frozen part train (PEFT)"
        if frozen < len(self.groups) and self.raw.backbone.split(frozen) is None:
            return f"no cache: {self.raw.backbone.name} cannot be cut after group {frozen} (runs whole)"
        return ""

    def solvable(self) -> bool:
        """Whether this head-only stage is solved in closed form instead of trained by SGD (see ``head_solver``)."""
        num_groups = len(self.groups)
        fc = getattr(self.raw.head, "fc", None)
        return (
            self.config.head_solver == "lbfgs"
            and self.level == num_groups
            and self.stage.num_trainable(num_groups) == 0
            and isinstance(fc, nn.Linear)
            and getattr(self.raw.head, "in_features", None) == fc.in_features
            and self.mixer is None
            and self.config.balance == "none"
            and not any(p.requires_grad for p in self.extra_params)
        )

    def skip_to(self, epoch: int) -> int | None:
        solved_stage = self.solvable() and epoch > self.stage.start  # resumed inside a stage solved at its start
        return self.stage.end if solved_stage else None

    # --- one epoch ----------------------------------------------------------------------------
    def inputs_kwargs(self, level: int | None) -> dict[str, Any]:
        if level is None:
            return {}
        return {"from_features": True} if level == len(self.groups) else {"from_split": level}

    def cached(self, level: int, epoch: int | None) -> tuple[Tensor, Tensor]:
        """Cached train view of ``epoch`` (``None``: validation set) at ``level``."""
        key = None if level == len(self.groups) else level
        return self.cache.validation(key) if epoch is None else self.cache.train(epoch, key)

    def prepare_epoch(self, epoch: int) -> None:
        if self.level is not None:
            with torch.random.fork_rng():  # a view's augmentations depend on the view only
                torch.manual_seed(derive_seed(self.config.seed, epoch % len(self.cache.views), "loader"))
                self.cached(self.level, epoch)

    def loader(
        self, dataset: Dataset, epoch: int, shuffle: bool = True, batch_size: int | None = None, weighted: bool = True
    ) -> DataLoader:
        """Epoch ``epoch``'s batches of ``dataset`` (``batch_size``: the config's by default; ``weighted``: draw
        by the class-balancing weights, which belong to the training set).

        With loader workers (images, not cached tensors) one loader serves the whole run, so its workers
        start once; its items are seeded by ``(seed, epoch, index)`` (:class:`EpochItems`), so the batches
        do not depend on the number of workers and a resumed run sees the same ones.
        """
        persistent = self.config.num_workers > 0 and not isinstance(dataset, TensorDataset)
        batch_size = batch_size or self.config.batch_size
        key = (id(dataset), shuffle)
        if persistent and key in self._loaders:
            sampler, loader = self._loaders[key]
            sampler.epoch = epoch
            return loader
        sampler = EpochSampler(
            len(dataset),
            seed=self.config.seed,
            shuffle=shuffle,
            weights=self.sample_weights if shuffle and weighted else None,
            rank=self.fabric.global_rank,
            world_size=self.fabric.world_size,
            epoch=epoch,
            keyed=persistent,
        )
        loader = DataLoader(
            EpochItems(dataset, self.config.seed) if persistent else dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=0 if isinstance(dataset, TensorDataset) else self.config.num_workers,
            persistent_workers=persistent,
            pin_memory=self.fabric.device.type == "cuda" and not isinstance(dataset, TensorDataset),
            generator=torch.Generator().manual_seed(derive_seed(self.config.seed, epoch, "loader")),
            # a last training batch of one image breaks BatchNorm in heads (MLP) and carries no statistics
            drop_last=shuffle and _lone_last_batch(len(sampler), batch_size),
        )
        wrapped = self.fabric.setup_dataloaders(loader, use_distributed_sampler=False)
        if persistent:
            self._loaders[key] = (sampler, wrapped)
        return wrapped

    def steps_per_epoch(self) -> int:
        per_rank = math.ceil(len(self.train_set) / self.fabric.world_size)
        batches = math.ceil(per_rank / self.config.batch_size)
        batches -= _lone_last_batch(per_rank, self.config.batch_size)  # dropped by loader()
        return math.ceil(batches / self.config.grad_accum)

    def train_epoch(self, trainer: Trainer, epoch: int) -> EpochStats:
        if self.solvable():
            return self.solve_head()
        self.solved = ""
        return trainer.run_epoch(self, epoch)

    def batches(self, epoch: int) -> DataLoader:
        """The epoch's loader (cached features or outputs where frozen parts allow); sets train mode."""
        if self.level is not None:
            loader = self.loader(TensorDataset(*self.cached(self.level, epoch)), epoch)
        else:
            loader = self.loader(self.train_set, epoch)
        self.train_modes()
        return loader

    def train_modes(self) -> None:
        """Train mode, and BatchNorm layers as the config and the stage say (eval: pretraining statistics kept)."""
        self.module.train()
        apply_bn_policy(self.groups, self.config.train_bn, self.raw.backbone)
        if self.stage.bn_eval:  # keep pretraining statistics in every group (LP-FT's fine-tuning stage)
            for group in self.groups:
                for bn in group.batchnorms():
                    bn.eval()

    def training_step(self, batch: tuple[Tensor, Tensor]) -> StepOutput:
        inputs, targets = batch
        hard = targets
        if self.mixer is not None and self.level is None:
            inputs, targets = self.mixer(inputs, targets)
        if self.config.channels_last and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        logits = self.module(inputs, **self.inputs_kwargs(self.level))
        return StepOutput(self.criterion(logits.float(), targets), len(hard), logits, hard)

    def after_step(self) -> None:
        if self.scheduler is not None and self.config.scheduler in PER_STEP:
            self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.raw, step=self.ema_step)
            self.ema_step += 1

    def solve_head(self) -> EpochStats:
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
        if self.ema is not None:  # the validated average starts from the solved head, not the random one
            self.ema.module.load_state_dict(self.raw.state_dict())
        features, labels = views[0]
        logits = probe.logits(features)
        self.solved = f"C={chosen.C:g}, 3-fold CV accuracy {chosen.cv_accuracy:.3f}"
        accuracy = float((logits.argmax(1) == labels).float().mean())
        loss = float(nn.functional.cross_entropy(logits, labels))
        return EpochStats(loss, accuracy, len(labels), next_epoch=self.stage.end)

    # --- validation ---------------------------------------------------------------------------
    def evaluated_model(self) -> nn.Module:
        """The weights that are validated, selected and saved: the EMA's when it is on."""
        return self.ema.module if self.ema is not None else self.raw

    def evaluate(self, level: int | None) -> tuple[float, Metrics, Tensor]:
        """Validation loss, metrics and class probabilities of the evaluated weights."""
        module = self.ema.module if self.ema is not None else self.module
        module.eval()
        if level is not None:
            logits, labels = self._cached_logits(level)
        else:
            config = self.config
            logits, labels = dataset_logits(
                self.fabric, module, self.val_set, config.batch_size, config.num_workers, config.channels_last
            )
        loss = float(nn.functional.cross_entropy(logits, labels))
        probs = logits.softmax(1)
        return loss, classification_metrics(labels.numpy(), probs.numpy(), self.config.top_k), probs

    def _cached_logits(self, level: int) -> tuple[Tensor, Tensor]:
        features, labels = self.cached(level, None)
        net, kwargs = self.evaluated_model(), self.inputs_kwargs(level)
        with torch.inference_mode(), self.fabric.autocast():
            chunks = features.split(self.config.batch_size)
            logits = torch.cat([net(chunk.to(self.fabric.device), **kwargs).float().cpu() for chunk in chunks])
        return logits, labels

    def validate(self, epoch: int) -> dict[str, Any]:
        val_loss, metrics, _ = self.evaluate(self.level)
        self.last_metrics = metrics
        self._step_epoch_scheduler(val_loss, metrics)  # before reading lr: the row shows the next epoch's rate
        return {
            "val_loss": round(val_loss, 6),
            "val_acc": round(metrics.accuracy, 6),
            "val_f1": round(metrics.f1, 6),
            f"val_top{metrics.top_k}": round(metrics.top_k_accuracy, 6),
            "lr": self.optimizer.param_groups[-1]["lr"],
            "trainable_params": trainable_fraction(self.raw)[0],
        }

    def _step_epoch_scheduler(self, val_loss: float, metrics: Metrics) -> None:
        if self.scheduler is not None and self.config.scheduler == "step":
            self.scheduler.step()
        elif self.scheduler is not None and self.config.scheduler == "plateau":
            monitored = {"val_loss": val_loss, "val_acc": metrics.accuracy, "val_f1": metrics.f1}
            self.scheduler.step(monitored[self.config.monitor])

    def end_epoch(self, row: dict[str, Any]) -> None:
        row["cached"] = self.level is not None

    def describe(self, row: dict[str, Any], improved: bool) -> str:
        what = f"head solved ({self.solved})" if self.solved else f"{row['images_per_second']:.0f} img/s"
        return (
            f"epoch {row['epoch'] + 1:3d}/{self.config.epochs} train loss {row['train_loss']:.4f} acc "
            f"{row['train_acc']:.3f} | val loss {row['val_loss']:.4f} acc {row['val_acc']:.3f} f1 "
            f"{row['val_f1']:.3f} | {what}{' *' if improved else ''}"
        )

    # --- checkpoints --------------------------------------------------------------------------
    def weights(self) -> dict[str, Tensor]:
        return self.evaluated_model().state_dict()

    def load_weights(self, weights: dict[str, Tensor]) -> None:
        self.raw.load_state_dict(weights)

    def spec(self) -> dict[str, Any]:
        return self.raw.spec()

    def details(self) -> dict[str, Any]:
        return vars(self.last_metrics) if self.last_metrics is not None else {}

    def checkpoint(self) -> dict[str, Any]:
        """Raw weights, optimizer, scheduler and EMA: all a resume needs."""
        return {
            "state_dict": self.raw.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "ema_step": self.ema_step,
        }

    def resume_weights(self, payload: dict[str, Any]) -> None:
        self.raw.load_state_dict(payload["state_dict"])

    def restore(self, payload: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler is not None and payload.get("scheduler") is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        if self.ema is not None and payload.get("ema") is not None:
            self.ema.module.load_state_dict(payload["ema"])
            self.ema_step = int(payload["ema_step"])

    def final_metrics(self, best_epoch: int) -> Metrics:
        """Validation metrics of the selected weights (loaded into the model by ``BestWeights``)."""
        self.ema = None  # the model now holds the selected (EMA) weights
        if self.module is None:
            self.module = self.fabric.setup_module(self.raw)
        # the cached outputs still hold for the best weights if those groups were frozen at the best epoch too
        n = len(self.groups)
        best_frozen = n - self.strategy.stage_at(best_epoch, self.config.epochs, n)[1].num_trainable(n)
        level = self.level if self.level is not None and self.level <= best_frozen else None
        return self.evaluate(level)[1]
