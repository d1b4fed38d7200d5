"""Strategies with no gradient steps: frozen features → a scikit-learn classifier → a saved model.

The backbone runs once per image (under ``inference_mode``), the classifier is fitted with
``C`` chosen by cross-validation on the training features, and the result is an ordinary
:class:`TransferModel` (backbone + a linear or kernel-SVM head) written to ``best.pt`` like any
run, so ``predict``, ``serve`` and ``export`` take it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import Dataset

from transferkit.backbones import DataConfig, ModelBackbone
from transferkit.engine import run_dir
from transferkit.engine.cache import extract_features
from transferkit.engine.checkpoint import atomic_save
from transferkit.engine.config import TrainConfig, frozen_autocast_dtype
from transferkit.engine.distributed import make_fabric
from transferkit.engine.loop import FitResult
from transferkit.engine.metrics import classification_metrics
from transferkit.engine.model import TransferModel
from transferkit.strategies.sklearn_probe import Classifier, fit_sklearn_head

Features = tuple[Tensor, Tensor]


def fit_frozen(
    backbone: ModelBackbone,
    train: Dataset,
    val: Dataset,
    classes: list[str],
    data_config: DataConfig,
    classifier: Classifier,
    config: TrainConfig,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    run_config: dict[str, Any] | None = None,
    standardize: bool = True,
    train_features: Features | None = None,
) -> FitResult:
    """Fit ``classifier`` on ``backbone``'s frozen features of ``train``; metrics on ``val``.

    Args:
        train: Training images with the evaluation transform (no augmentation).
        train_features: Already extracted ``(features, labels)`` of ``train`` (skips that pass).
        standardize: Standardise features before an SVM (off for raw pixels and HOG).
    """
    fabric = make_fabric(config)
    backbone.to(fabric.device)
    started = time.perf_counter()
    extract = _extractor(fabric, backbone, config)
    train_x, train_y = train_features or extract(train, "features (train)")
    val_x, val_y = extract(val, "features (val)")
    extract_seconds = time.perf_counter() - started
    fitted = fit_sklearn_head(train_x.numpy(), train_y.numpy(), len(classes), classifier, standardize, config.seed)
    model = TransferModel(backbone, fitted.module, classes, {"name": fitted.name, **fitted.options}, data_config)
    seconds = time.perf_counter() - started
    metrics = classification_metrics(val_y.numpy(), _probs(model, val_x).numpy(), config.top_k)
    row = _history_row(model, (train_x, train_y), (val_x, val_y), seconds, fitted.C, fitted.cv_accuracy)
    row["val_f1"] = round(metrics.f1, 6)
    cv = (
        f"3-fold CV accuracy {fitted.cv_accuracy:.4f}"
        if fitted.cv_accuracy == fitted.cv_accuracy
        else "not cross-validated: a class has fewer than 2 training images, nothing to cross-validate"
    )
    log(
        f"{classifier} on frozen {backbone.name} features: C={fitted.C:g} ({cv}), val accuracy "
        f"{metrics.accuracy:.4f}, macro F1 {metrics.f1:.4f} ({seconds:.1f} s)"
    )
    facts = {"strategy": {"classifier": classifier}, **(run_config or {})}
    out_path = write_frozen_run(out, model, [row], metrics, config, facts)
    images = len(train_y) + len(val_y)
    return FitResult(
        model,
        [row],
        0,
        metrics,
        out_path,
        seconds,
        images / max(extract_seconds, 1e-9),
        extra={"C": fitted.C, "cv_accuracy": fitted.cv_accuracy, "cache_seconds": extract_seconds},
    )


def _extractor(fabric, backbone: ModelBackbone, config: TrainConfig) -> Callable[[Dataset, str], Features]:
    dtype = frozen_autocast_dtype(config.precision, fabric.device)

    def extract(dataset: Dataset, desc: str) -> Features:
        return extract_features(
            fabric,
            backbone,
            dataset,
            config.batch_size,
            config.num_workers,
            config.channels_last,
            desc=desc if config.progress else None,
            autocast_dtype=dtype,
        )

    return extract


def _probs(model: TransferModel, features: Tensor) -> Tensor:
    with torch.inference_mode():
        return model(features, from_features=True).float().softmax(1).cpu()


def _history_row(
    model: TransferModel, train: Features, val: Features, seconds: float, C: float, cv_accuracy: float
) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": 0, "stage": 0}
    for name, (x, y) in (("train", train), ("val", val)):
        probs = _probs(model, x)
        row[f"{name}_loss"] = round(float(F.nll_loss(probs.clamp_min(1e-12).log(), y)), 6)
        row[f"{name}_acc"] = round(float((probs.argmax(1) == y).float().mean()), 6)
    row.update({"C": C, "cv_accuracy": round(cv_accuracy, 6), "epoch_seconds": round(seconds, 3), "cached": True})
    return row


def write_frozen_run(out, model, rows: list[dict], metrics, config, facts: dict[str, Any]) -> Path | None:
    """A run folder for a model fitted without epochs: config, ``best.pt``, ``rows`` as metrics.csv, confusion."""
    if out is None:
        return None
    path = run_dir.prepare(out)
    run_dir.write_config(path, {"train": config.to_dict(), "model": model.spec(), **facts})
    atomic_save({"spec": model.spec(), "state_dict": model.state_dict(), "epoch": 0}, path / "best.pt")
    run_dir.write_json(path, "best_metrics.json", {"epoch": 0, **vars(metrics)})
    run_dir.write_metrics_csv(path, rows)
    run_dir.plot_confusion(path, metrics.confusion, model.classes)
    return path
