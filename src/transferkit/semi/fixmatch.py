"""FixMatch (Sohn et al., NeurIPS 2020) on a pretrained backbone: every layer learns from the labelled
images and from the unlabelled images' own confident predictions.

Each step draws ``B`` labelled images (the training transform) and ``μ·B`` unlabelled ones, each seen
twice: a *weak* view (the same training transform: crop and flip) and a *strong* view (plus
RandAugment). Where the model's largest probability on the weak view reaches ``τ`` (``threshold``),
that class is the target of the strong view (a hard pseudo-label, cross-entropy). The loss is

    ℓ = CE(labelled) + λ · (1 / μB) · Σ_u 1[max p(weak_u) ≥ τ] · CE(strong_u, argmax p(weak_u))

(the paper's Eq. 4: images under the threshold count as zeros in the mean). The EMA of the weights
is validated, selected and saved (the paper evaluates its EMA model).

On a pretrained backbone the head starts as a linear probe solved on the frozen features (the
strategy is LP-FT, BatchNorm statistics frozen): the first pseudo-labels then come from ImageNet
features instead of a random head, and fine-tuning starts from a head fitted to them (Kumar et
al.). With frozen statistics the three batches need not share BatchNorm; they still go through
the network as one batch (one pass). No label smoothing: smoothed targets would keep every
confidence under ``τ``. An *epoch* is one pass over the larger of the two sets (the other one
cycles), at least ``min_steps`` steps. It trains the whole backbone on ``(1 + 2μ)·B`` images a
step: a GPU's recipe (on a CPU, self-training on cached features is the affordable one). On a GPU
the views are made there, a batch at a time (:mod:`transferkit.data.batch_views`), from images
resized once (:mod:`transferkit.data.resized`); elsewhere by the loader's workers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from transferkit.data.batch_views import BatchViews
from transferkit.data.resized import resize_once
from transferkit.engine.classification import ClassificationTask
from transferkit.engine.config import TrainConfig, trains_on_gpu
from transferkit.engine.trainer import StepOutput
from transferkit.errors import ConfigError

AUGMENT_ON = ("auto", "device", "loader")
UNLABELLED_KEYS = 1 << 40  # the unlabelled loader's sampler epochs start here: its orders and augmentations
# never share a seed with the labelled loader's


@dataclass(frozen=True)
class FixMatchConfig:
    threshold: float = 0.95  # τ: the confidence a pseudo-label needs
    mu: int = 7  # unlabelled images per labelled image in a step
    weight: float = 1.0  # λ: the unlabelled loss's weight
    epochs: int = 12  # the first is the linear probe (solved in one step)
    lr: float = 5e-4
    batch_size: int = 64
    ema_decay: float = 0.999
    warmup_epochs: float = 1.0
    min_steps: int = 50  # per epoch: small sets still get enough steps
    augment_on: str = "auto"  # device: views made on the GPU (batch_views); loader: by the loader's workers

    def __post_init__(self) -> None:
        checks = [
            (0 < self.threshold <= 1, f"threshold must be in (0, 1], got {self.threshold}"),
            (self.mu >= 1, f"mu must be >= 1, got {self.mu}"),
            (self.weight >= 0, f"weight must be >= 0, got {self.weight}"),
            (self.epochs >= 2, f"epochs must be >= 2 (a probe, then FixMatch), got {self.epochs}"),
            (self.augment_on in AUGMENT_ON, f"augment_on must be one of {AUGMENT_ON}, got {self.augment_on!r}"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ConfigError(f"FixMatch: {'; '.join(problems)}.")

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """``base`` (the user's seed, devices, precision, workers, cache…) with FixMatch's schedule."""
        return dataclasses.replace(
            base, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, ema_decay=self.ema_decay,
            warmup_epochs=self.warmup_epochs, scheduler="cosine", monitor="val_acc", cache_views=1,
            label_smoothing=0.0,  # smoothed targets cap the confidence under τ: no pseudo-label would pass
        )  # fmt: skip

    def strategy_options(self) -> dict[str, Any]:
        """LP-FT: a probe solved in one step, then every layer at ``lr`` with BatchNorm's statistics frozen
        (batch statistics would change the features the probe was fitted to: its first steps undo it)."""
        return {"probe_epochs": 1, "ft_lr_scale": 1.0, "freeze_bn": True}


def consistency_loss(weak_logits: Tensor, strong_logits: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """(FixMatch's unlabelled loss, how many images passed ``threshold``).

    The weak view's argmax is the strong view's target where its softmax maximum is ``>= threshold``;
    the mean runs over every image (those under the threshold add zero). No gradient reaches the
    weak view.
    """
    confidence, pseudo = F.softmax(weak_logits.detach().float(), 1).max(1)
    mask = (confidence >= threshold).float()
    loss = (F.cross_entropy(strong_logits.float(), pseudo, reduction="none") * mask).mean()
    return loss, mask.sum()


class TwoViews(Dataset):
    """The images of ``base`` (anything with ``raw(i)``, labels ignored) as (weak view, strong view) pairs."""

    def __init__(self, base: Dataset, weak: Any, strong: Any) -> None:
        self.base, self.weak, self.strong = base, weak, strong

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[tuple[Tensor, Tensor], int]:
        image = self.base.raw(index)  # type: ignore[attr-defined]
        return (self.weak(image), self.strong(image)), -1


class DeviceViews(nn.Module):
    """The views made on the device: the loader gives resized uint8 images (labelled and unlabelled), and
    each step gets the labelled images' weak view and the pool's weak and strong views of one batch each."""

    def __init__(self, labelled: Dataset, size: int, mean, std) -> None:
        super().__init__()
        self.labelled = labelled
        self.weak, self.strong = BatchViews(size, mean, std, strong=False), BatchViews(size, mean, std, strong=True)

    def forward(self, images: Tensor, pool: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        with torch.autocast(images.device.type, enabled=False):  # resampling and colours in float32
            return self.weak(images), self.weak(pool), self.strong(pool)


class _Steps:
    """One epoch's ``steps`` pairs of (labelled batch, unlabelled batch); each loader restarts when it runs out."""

    def __init__(self, task: FixMatchTask, epoch: int, steps: int) -> None:
        self.task, self.epoch, self.steps = task, epoch, steps

    def __len__(self) -> int:
        return self.steps

    def _cycle(self, dataset: Dataset, first_key: int, batch_size: int, weighted: bool) -> Iterator[Any]:
        passes = 0
        while True:  # pass k of epoch e draws its order and augmentations from key (e · steps + k)
            key = first_key + self.epoch * self.steps + passes
            yield from self.task.loader(dataset, key, batch_size=batch_size, weighted=weighted)
            passes += 1

    def __iter__(self) -> Iterator[Any]:
        task = self.task
        labelled = self._cycle(task.labelled, 0, task.config.batch_size, True)
        unlabelled = self._cycle(task.unlabeled, UNLABELLED_KEYS, task.unlabelled_batch, False)
        for _, pair in zip(range(self.steps), zip(labelled, unlabelled)):
            yield pair


class FixMatchTask(ClassificationTask):
    """Classification's task with FixMatch's steps once the backbone trains (the probe stage is classification's).

    Built by :func:`transferkit.engine.loop.fit` (``make_task``), as :func:`fit_fixmatch` does.
    """

    name = "fixmatch"

    def __init__(self, *args: Any, unlabeled: Dataset, cfg: FixMatchConfig, views: DeviceViews | None = None) -> None:
        """``args``: :class:`ClassificationTask`'s; ``unlabeled``: the pool as (weak, strong) pairs (:class:`TwoViews`),
        or, with ``views``, as resized images that ``views`` augments on the device (the labelled ones too)."""
        super().__init__(*args)
        config = self.config
        if self.mixer is not None:
            raise ConfigError("FixMatch does not combine with Mixup/CutMix: set --mixup 0 --cutmix 0.")
        self.unlabeled, self.cfg, self.views = unlabeled, cfg, views
        self.labelled = views.labelled if views is not None else self.train_set
        if views is not None:
            views.to(self.fabric.device)
        self.unlabelled_batch = cfg.mu * config.batch_size
        self.confident = self.seen = 0.0  # unlabelled images over the threshold / drawn, this epoch

    def steps_per_epoch(self) -> int:
        """Optimizer steps of an epoch: a pass over the larger set, at least ``min_steps``."""
        per_rank = lambda n: math.ceil(n / self.fabric.world_size)  # noqa: E731
        batches = max(
            math.ceil(per_rank(len(self.train_set)) / self.config.batch_size),
            math.ceil(per_rank(len(self.unlabeled)) / self.unlabelled_batch),
            self.cfg.min_steps,
        )
        return math.ceil(batches / self.config.grad_accum)

    def batches(self, epoch: int) -> Any:
        if self.level is not None:  # the probe stage: classification's batches of cached features
            return super().batches(epoch)
        self.train_modes()
        return _Steps(self, epoch, self.steps_per_epoch() * self.config.grad_accum)

    def training_step(self, batch: Any) -> StepOutput:
        if self.level is not None:  # the probe stage, on cached features
            return super().training_step(batch)
        (images, targets), (pool, _) = batch
        images, weak, strong = self.views(images, pool) if self.views is not None else (images, *pool)
        n, m = len(images), len(weak)
        inputs = torch.cat([images, weak, strong])
        if self.config.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        logits = self.module(inputs).float()
        unlabelled, confident = consistency_loss(logits[n : n + m], logits[n + m :], self.cfg.threshold)
        self.confident += float(confident)
        self.seen += m
        loss = self.criterion(logits[:n], targets) + self.cfg.weight * unlabelled
        return StepOutput(loss, n, logits[:n], targets)

    def end_epoch(self, row: dict[str, Any]) -> None:
        super().end_epoch(row)
        if self.seen:
            row["pseudo_labelled_share"] = round(self.confident / self.seen, 4)
        self.confident = self.seen = 0.0

    def describe(self, row: dict[str, Any], improved: bool) -> str:
        share = row.get("pseudo_labelled_share")
        extra = f" | {100 * share:.0f}% of unlabelled over τ={self.cfg.threshold:g}" if share is not None else ""
        return super().describe(row, improved) + extra


def fit_fixmatch(
    model: Any,
    data: Any,
    unlabeled: Dataset,
    config: TrainConfig,
    cfg: FixMatchConfig | None = None,
    out: Any = None,
    resume: bool = False,
    log: Any = print,
    run_config: dict[str, Any] | None = None,
) -> Any:
    """Train ``model`` (a pretrained backbone with a new head) by FixMatch on ``data`` and the raw images
    ``unlabeled``; ``data``'s training transform is the weak view, with RandAugment added the strong one."""
    from transferkit.engine.loop import fit
    from transferkit.semi.run import strong_transform
    from transferkit.strategies import create_strategy

    cfg = cfg or FixMatchConfig()
    on_device, why = views_on_device(cfg, config, data.preset)
    if on_device:
        dc, workers, gb = data.data_config, config.num_workers, config.cache_max_gb
        pool, kept = resize_once(unlabeled, dc.input_size, dc.interpolation, workers, gb)
        labelled, _ = resize_once(data.train.base, dc.input_size, dc.interpolation, workers, gb)
        views, why = DeviceViews(labelled, dc.input_size, dc.mean, dc.std), f"{why}; the pool {kept}"
    else:
        pool, views = TwoViews(unlabeled, data.train.transform, strong_transform(data)), None
    strategy = create_strategy("lp-ft", **cfg.strategy_options())
    make_task = functools.partial(FixMatchTask, unlabeled=pool, cfg=cfg, views=views)
    facts = {**(run_config or {}), "fixmatch": {**dataclasses.asdict(cfg), "unlabeled": len(pool)}}
    log(f"FixMatch: {len(data.train)} labelled, {len(pool)} unlabelled images (τ={cfg.threshold:g}, μ={cfg.mu}, "
        f"λ={cfg.weight:g}); the head starts as a linear probe; views {why}")  # fmt: skip
    return fit(model, strategy, data.train, data.val, cfg.train_config(config), out, resume, [data.train_eval],
               run_config=facts, log=log, make_task=make_task)  # fmt: skip


def views_on_device(cfg: FixMatchConfig, config: TrainConfig, preset: str) -> tuple[bool, str]:
    """Whether the views are made on the device, and why (for the log). ``auto``: where training runs on a
    GPU and the preset is ``light`` (the one :class:`BatchViews` reproduces)."""
    if cfg.augment_on == "device" and preset != "light":
        raise ConfigError(f"FixMatch's device views reproduce the 'light' preset (crop + flip); got preset {preset!r}. "
                          "Use --preset light, or augment_on=loader.")  # fmt: skip
    if cfg.augment_on != "auto":
        return cfg.augment_on == "device", f"made by the {'device' if cfg.augment_on == 'device' else 'loader'}"
    if not trains_on_gpu(config):
        return False, "made by the loader's workers (no GPU)"
    if preset != "light":
        return False, f"made by the loader's workers (preset {preset!r}; the GPU's reproduce 'light')"
    return True, "made on the GPU, a batch at a time"
