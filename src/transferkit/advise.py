"""``advise``: which strategy to use, from the data's size and the measured closeness of the
target to the backbone's pretraining, checked against the classical baselines and for negative
transfer.

Measurements (no guesswork; cross-validated on the training split only):
1. images per class;
2. linear-probe accuracy and LogME of the *pretrained* features at several input sizes (the
   best size is recommended), and of the same architecture *randomly initialised*;
3. the classical baselines a user would try first: raw pixels and HOG descriptors → RBF SVM;
4. optionally a small training budget: feature extraction from the pretrained backbone vs.
   training the same architecture from scratch vs. the classical baselines, on validation.

Rules (the README's strategy table):
    size \\ closeness   close (probe ≥ 0.85)   moderate (≥ 0.6)        far
    small (< 30/class)  feature-extraction     lp-ft                   lp-ft
    medium (< 300)      lp-ft                  progressive             discriminative
    large               discriminative         fine-tune               fine-tune
Negative transfer overrides the table: pretrained features no better than random ones, the
from-scratch budget run winning, or a classical baseline ahead of the pretrained features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from transferkit.api import Data, rebind, train_classifier
from transferkit.backbones import ModelBackbone, create_backbone
from transferkit.engine.config import TrainConfig
from transferkit.heads.probe import linear_probe
from transferkit.inference import dataset_features
from transferkit.strategies.sklearn_probe import svm_cv_accuracy
from transferkit.transferability.logme import logme

TABLE = {
    ("small", "close"): "feature-extraction",
    ("small", "moderate"): "lp-ft",
    ("small", "far"): "lp-ft",
    ("medium", "close"): "lp-ft",
    ("medium", "moderate"): "progressive",
    ("medium", "far"): "discriminative",
    ("large", "close"): "discriminative",
    ("large", "moderate"): "fine-tune",
    ("large", "far"): "fine-tune",
}
CLASSICAL = {"hog-svm": "hog", "pixels-svm": "pixels"}
AHEAD = 0.01  # a classical baseline counts as ahead when its CV accuracy is higher by more than this


@dataclass
class Advice:
    strategy: str
    size: str
    closeness: str
    per_class_min: int
    pretrained_probe: float
    scratch_probe: float
    pretrained_logme: float
    scratch_logme: float
    negative_transfer: bool
    budget: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    input_size: int | None = None
    size_probes: dict[int, float] = field(default_factory=dict)
    classical: dict[str, float] = field(default_factory=dict)


def size_of(per_class_min: int) -> str:
    return "small" if per_class_min < 30 else "medium" if per_class_min < 300 else "large"


def closeness_of(probe: float) -> str:
    return "close" if probe >= 0.85 else "moderate" if probe >= 0.6 else "far"


def _probe(backbone: ModelBackbone, data: Data) -> tuple[float, float]:
    """(CV linear-probe accuracy, LogME) of ``backbone``'s features of the training images."""
    features, labels = dataset_features(backbone, data.train_eval)
    x, y = features.numpy().astype(np.float64), labels.numpy()
    accuracy = linear_probe(x, y).cv_accuracy
    return (accuracy if accuracy == accuracy else 0.0), logme(x, y)


def _sizes(data: Data, sizes: Sequence[int] | None) -> list[int]:
    current = data.data_config.input_size
    return sorted(set(sizes or (96, 160, current)) | {current})


def measure_sizes(
    data: Data, backbone: ModelBackbone, sizes: Sequence[int] | None, log
) -> dict[int, tuple[float, float]]:
    """(CV probe accuracy, LogME) of the pretrained features at each input size (one extraction per size)."""
    result = {}
    for size in _sizes(data, sizes):
        bound = data if size == data.data_config.input_size else rebind(data, data.data_config, size)
        result[size] = _probe(backbone, bound)
        log(f"pretrained features at {size} px: linear-probe accuracy {result[size][0]:.4f}")
    return result


def measure_classical(data: Data, seed: int, log) -> dict[str, float]:
    """3-fold CV accuracy of HOG + RBF-SVM and pixels + RBF-SVM on the training images."""
    result = {}
    for name, extractor in CLASSICAL.items():
        backbone = create_backbone(extractor)
        features, labels = dataset_features(backbone, rebind(data, backbone.data_config).train_eval)
        result[name] = svm_cv_accuracy(features.numpy(), labels.numpy(), seed=seed)
        log(f"{name} (classical baseline): 3-fold CV accuracy {result[name]:.4f}")
    return result


def advise(
    data: Data,
    pretrained: ModelBackbone,
    scratch: ModelBackbone,
    budget_epochs: int = 0,
    config: TrainConfig | None = None,
    log: Callable[[str], None] = print,
    sizes: Sequence[int] | None = None,
) -> Advice:
    """Measure and recommend. ``scratch``: the same architecture, randomly initialised."""
    config = config or TrainConfig()
    counts = np.bincount([label for _, label in data.splits.train]) if data.splits else None
    if counts is None:
        counts = np.bincount([int(data.train_eval[i][1]) for i in range(len(data.train_eval))])
    per_class_min = int(counts.min())
    measured = measure_sizes(data, pretrained, sizes, log)
    size_probes = {size: accuracy for size, (accuracy, _) in measured.items()}
    best_size = max(size_probes, key=lambda s: (size_probes[s], -s))
    bound = rebind(data, data.data_config, best_size) if best_size != data.data_config.input_size else data
    p_probe, p_logme = measured[best_size]
    s_probe, s_logme = _probe(scratch, bound)
    log(f"random-init features at {best_size} px: linear-probe accuracy {s_probe:.4f}, LogME {s_logme:.4f}")
    classical = measure_classical(data, config.seed, log)
    size, closeness = size_of(per_class_min), closeness_of(p_probe)
    reasons = [
        f"{per_class_min} training images in the smallest class → {size} data",
        f"pretrained linear probe {p_probe:.3f} at {best_size} px (random init: {s_probe:.3f}) → target {closeness} "
        "to pretraining",
        "input size: " + ", ".join(f"{s} px {a:.3f}" for s, a in size_probes.items()) + f" → use {best_size} px",
    ]
    negative = p_probe <= s_probe or p_logme <= s_logme
    if negative:
        reasons.append("pretrained features are no better than random ones: likely negative transfer")
    best_classical = max(classical, key=lambda k: np.nan_to_num(classical[k]))
    ahead = np.nan_to_num(classical[best_classical]) > p_probe + AHEAD
    reasons.append(
        f"classical baselines: {', '.join(f'{k} {v:.3f}' for k, v in classical.items())} vs pretrained probe "
        f"{p_probe:.3f} → {'the classical baseline is AHEAD' if ahead else 'transfer is ahead'}"
    )
    budget = _budget_run(data, pretrained, scratch, budget_epochs, config, log) if budget_epochs > 0 else {}
    if budget and budget["scratch"] >= budget["transfer"]:
        negative = True
        reasons.append(f"from scratch ({budget['scratch']:.3f}) matched or beat transfer ({budget['transfer']:.3f})")
    if budget and max(budget[k] for k in CLASSICAL) > budget["transfer"]:
        ahead = True
        reasons.append("a classical baseline beat feature extraction on validation in the budget run")
    strategy = TABLE[(size, closeness)]
    if negative:
        strategy = "fine-tune from scratch (--weights none), or another backbone"
    if ahead:  # negative transfer includes "worse than HOG/pixels"
        strategy = f"sklearn-{best_classical} (transfer is worse than HOG/pixels here; --strategy auto tries both)"
        strategy += "; " + "from scratch (--weights none) also beats these weights" if negative else ""
        negative = True
    return Advice(
        strategy, size, closeness, per_class_min, p_probe, s_probe, p_logme, s_logme, negative, budget, reasons,
        best_size, size_probes, classical,
    )  # fmt: skip


def _budget_run(data, pretrained, scratch, epochs: int, base: TrainConfig, log) -> dict[str, float]:
    """Validation accuracy of feature extraction, from-scratch training and the classical baselines."""
    cfg = TrainConfig(**{**base.to_dict(), "epochs": epochs, "progress": False})
    quiet = lambda *_: None  # noqa: E731
    budget = {"epochs": epochs}
    budget["transfer"] = train_classifier(data, pretrained, "feature-extraction", cfg, log=quiet).metrics.accuracy
    budget["scratch"] = train_classifier(data, scratch, "fine-tune", cfg, log=quiet).metrics.accuracy
    for name in CLASSICAL:
        budget[name] = train_classifier(data, pretrained, f"sklearn-{name}", cfg, log=quiet).metrics.accuracy
    log(
        f"{epochs}-epoch budget, validation accuracy: feature extraction {budget['transfer']:.4f}, from scratch "
        f"{budget['scratch']:.4f}, " + ", ".join(f"{k} {budget[k]:.4f}" for k in CLASSICAL)
    )
    return budget
