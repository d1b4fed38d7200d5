"""High-level entry points: a folder of images in, a trained classifier and its numbers out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from transferkit.backbones import DataConfig, ModelBackbone, create_backbone
from transferkit.data import (
    ImageFileDataset,
    Splits,
    WithTransform,
    build_transforms,
    compute_mean_std,
    find_splits,
    verify_images,
)
from transferkit.data.images import DEFAULT_MAX_PIXELS
from transferkit.engine.cache import extract_features
from transferkit.engine.config import TrainConfig, frozen_autocast_dtype
from transferkit.engine.distributed import dataset_logits
from transferkit.engine.loop import FitResult, fit, make_fabric
from transferkit.engine.metrics import classification_metrics
from transferkit.engine.model import TransferModel, build_model
from transferkit.errors import ConfigError
from transferkit.strategies import create_strategy, fit_sklearn_probe

SKLEARN_STRATEGIES = {"sklearn-logreg": "logreg", "sklearn-svm": "svm"}
Normalize = Literal["backbone", "dataset"]


@dataclass
class Data:
    """Datasets ready for training.

    ``train`` is augmented; ``train_eval`` holds the same images with the eval transform; ``val``, ``test``.
    """

    classes: list[str]
    train: Dataset
    train_eval: Dataset
    val: Dataset
    test: Dataset | None
    data_config: DataConfig
    splits: Splits | None = None
    preset: str = "light"

    def summary(self) -> str:
        counts = self.splits.counts("train") if self.splits else None
        per_class = ", ".join(f"{c}: {n}" for c, n in zip(self.classes, counts)) if counts else ""
        return (
            f"{len(self.classes)} classes, {len(self.train)} train / {len(self.val)} val"
            f"{f' / {len(self.test)} test' if self.test is not None else ''} images"
            f"{f' ({per_class})' if per_class else ''}"
        )


def make_data(
    train: Dataset,
    val: Dataset,
    classes: list[str],
    data_config: DataConfig,
    preset: str = "light",
    auto_augment: str = "none",
    test: Dataset | None = None,
    normalize: Normalize = "backbone",
    image_size: int | None = None,
) -> Data:
    """Attach train/eval transforms to raw datasets (items: (3, H, W) float images in [0, 1], label).

    ``normalize="dataset"`` replaces the backbone's mean/std by the training set's own.
    """
    size = image_size or data_config.input_size
    mean, std = data_config.mean, data_config.std
    if normalize == "dataset":
        resize = build_transforms("none", size, (0.0,) * 3, (1.0,) * 3, train=False)
        mean, std = compute_mean_std(WithTransform(train, resize))
    elif normalize != "backbone":
        raise ConfigError(f"normalize must be 'backbone' or 'dataset', got {normalize!r}.")
    config = DataConfig(size, tuple(mean), tuple(std), data_config.interpolation)
    train_tf = build_transforms(preset, size, mean, std, True, auto_augment, config.interpolation)  # type: ignore[arg-type]
    eval_tf = build_transforms(preset, size, mean, std, False, interpolation=config.interpolation)
    return Data(
        classes,
        WithTransform(train, train_tf),
        WithTransform(train, eval_tf),
        WithTransform(val, eval_tf),
        WithTransform(test, eval_tf) if test is not None else None,
        config,
        preset=preset,
    )


def rebind(data: Data, data_config: DataConfig, image_size: int | None = None) -> Data:
    """The same (already checked) images with another backbone's size and normalisation."""
    result = make_data(
        data.train.base,  # type: ignore[attr-defined]
        data.val.base,  # type: ignore[attr-defined]
        data.classes,
        data_config,
        data.preset,
        test=data.test.base if data.test is not None else None,  # type: ignore[attr-defined]
        image_size=image_size,
    )
    result.splits = data.splits
    return result


def load_data(
    data: str | Path,
    data_config: DataConfig,
    preset: str = "light",
    auto_augment: str = "none",
    normalize: Normalize | None = None,
    image_size: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    on_bad_image: Literal["skip", "error"] = "skip",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Data:
    """Find, check and wrap a folder (or CSV) of labelled images; see :func:`transferkit.data.find_splits`.

    Every image is decoded once up front: unreadable ones are skipped with a warning, or
    stop the run naming the file (``on_bad_image="error"``).
    """
    splits = find_splits(data, val_fraction, seed)
    checked = {
        name: verify_images(getattr(splits, name), on_bad_image, max_pixels) for name in ("train", "val", "test")
    }
    splits = Splits(splits.classes, checked["train"], checked["val"], checked["test"])
    normalize = normalize or ("dataset" if preset == "microscopy" else "backbone")
    result = make_data(
        ImageFileDataset(splits.train, max_pixels=max_pixels),
        ImageFileDataset(splits.val, max_pixels=max_pixels),
        splits.classes,
        data_config,
        preset,
        auto_augment,
        ImageFileDataset(splits.test, max_pixels=max_pixels) if splits.test else None,
        normalize,
        image_size,
    )
    result.splits = splits
    return result


PEFT_STRATEGIES = ("peft", "lora", "adapter", "bitfit", "prompt")


def _strategy_options(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    known = {
        "partial": {"groups"},
        "discriminative": {"ratio"},
        "progressive": {"epochs_per_stage", "ratio"},
        "lp-ft": {"probe_epochs", "ft_lr_scale"},
    }.get(strategy, set())
    if strategy in PEFT_STRATEGIES:
        known = {"method", "options"} if strategy == "peft" else {"options"}
        options = {**options, "options": options.get("options") or options.get("peft_options") or {}}
    return {k: v for k, v in options.items() if k in known and v is not None}


def train_classifier(
    data: Data,
    backbone: str | ModelBackbone = "efficientnet_lite0",
    strategy: str = "feature-extraction",
    config: TrainConfig | None = None,
    weights: str | Path | None = "imagenet",
    head: str = "linear",
    head_options: dict[str, Any] | None = None,
    strategy_options: dict[str, Any] | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    log=print,
    report: bool = True,
) -> FitResult:
    """Train a classifier on ``data`` with a pretrained backbone and a transfer strategy.

    ``strategy`` is a registered strategy (``feature-extraction``, ``fine-tune``, ``partial``,
    ``discriminative``, ``progressive``, ``lp-ft``) or ``sklearn-logreg``/``sklearn-svm``
    (frozen features → scikit-learn). With ``out``, the run folder also gets ``report.html`` and
    ``report.md`` (``report=False`` skips them).
    """
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    bb = create_backbone(backbone, weights=weights) if isinstance(backbone, str) else backbone
    head_options = head_options or {}
    model = build_model(bb, len(data.classes), data.classes, head, data_config=data.data_config, **head_options)
    trainable = sum(p.numel() for p in model.parameters())
    log(
        f"Backbone {bb.name}: {bb.num_features} features, {len(bb.layer_groups())} layer groups, "
        f"{trainable:,} parameters. "
        f"Data: {data.summary()}."
    )
    if strategy in SKLEARN_STRATEGIES:
        return _fit_sklearn(model, data, SKLEARN_STRATEGIES[strategy], config, log)
    strat = create_strategy(strategy, **_strategy_options(strategy, strategy_options or {}))
    log(f"Strategy {strategy}: {strat.explain()}.")
    views = [data.train_eval] if config.cache_views == 1 else [data.train] * config.cache_views
    run_config = {
        "data": {
            "classes": data.classes,
            "train": len(data.train),
            "val": len(data.val),
            "preset": data.preset,
            "mean": list(data.data_config.mean),
            "std": list(data.data_config.std),
            "image_size": data.data_config.input_size,
        }
    }
    result = fit(model, strat, data.train, data.val, config, out, resume, views, run_config=run_config, log=log)
    if report and result.run_dir is not None and _is_rank_zero():
        from transferkit.report import fit_report

        html_path, _ = fit_report(result.run_dir, result.model, data, result, strategy)
        log(f"Report: {html_path} (and report.md)")
    return result


def _is_rank_zero() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _fit_sklearn(model: TransferModel, data: Data, classifier: str, config: TrainConfig, log) -> FitResult:
    fabric = make_fabric(config)
    model.to(fabric.device)
    started = time.perf_counter()
    dtype = frozen_autocast_dtype(config.precision, fabric.device)
    train_x, train_y = extract_features(
        fabric, model.backbone, data.train_eval, config.batch_size, config.num_workers, autocast_dtype=dtype
    )
    val_x, val_y = extract_features(
        fabric, model.backbone, data.val, config.batch_size, config.num_workers, autocast_dtype=dtype
    )
    extract_seconds = time.perf_counter() - started
    probe = fit_sklearn_probe(train_x.numpy(), train_y.numpy(), classifier, config.seed)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    probs = np.zeros((len(val_y), len(data.classes)))
    probs[:, probe.classes_] = probe.predict_proba(val_x.numpy())
    metrics = classification_metrics(val_y.numpy(), probs, config.top_k)
    log(
        f"scikit-learn {classifier} on frozen features: val acc {metrics.accuracy:.3f} f1 {metrics.f1:.3f} "
        f"({seconds:.1f} s, features at {(len(train_y) + len(val_y)) / extract_seconds:.0f} img/s)"
    )
    row = {"epoch": 0, "stage": 0, "val_acc": metrics.accuracy, "val_f1": metrics.f1}
    return FitResult(
        model, [row], 0, metrics, None, seconds, (len(train_y) + len(val_y)) / extract_seconds, extra={"sklearn": probe}
    )


def evaluate(model: TransferModel, dataset: Dataset, config: TrainConfig | None = None):
    """Metrics of ``model`` on ``dataset`` (eval transform)."""
    config = config or TrainConfig()
    fabric = make_fabric(config)
    model.to(fabric.device).eval()
    logits, labels = dataset_logits(fabric, model, dataset, config.batch_size, config.num_workers, config.channels_last)
    return classification_metrics(labels.numpy(), logits.softmax(1).numpy(), config.top_k)
