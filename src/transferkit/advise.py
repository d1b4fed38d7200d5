"""``advise``: which strategy to use, from the data's size and the measured closeness of the
target to the backbone's pretraining, with a check for negative transfer.

Measurements (no guesswork):
1. images per class;
2. cross-validated linear-probe accuracy and LogME of the *pretrained* features, and of the
   same architecture *randomly initialised* (what the pretraining is worth on this data);
3. optionally a small training budget: feature extraction from the pretrained backbone vs.
   training the same architecture from scratch for the same epochs.

Rules (the README's strategy table):
    size \\ closeness   close (probe ≥ 0.85)   moderate (≥ 0.6)        far
    small (< 30/class)  feature-extraction     lp-ft                   lp-ft
    medium (< 300)      lp-ft                  progressive             discriminative
    large               discriminative         fine-tune               fine-tune
Negative transfer (pretrained no better than random features, or the from-scratch budget run
winning) overrides the table: train from scratch or try another backbone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from transferkit.api import Data, train_classifier
from transferkit.backbones import ModelBackbone
from transferkit.engine.config import TrainConfig
from transferkit.inference import dataset_features
from transferkit.transferability.logme import logme
from transferkit.transferability.multisource import probe_accuracy

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


def size_of(per_class_min: int) -> str:
    return "small" if per_class_min < 30 else "medium" if per_class_min < 300 else "large"


def closeness_of(probe: float) -> str:
    return "close" if probe >= 0.85 else "moderate" if probe >= 0.6 else "far"


def advise(
    data: Data,
    pretrained: ModelBackbone,
    scratch: ModelBackbone,
    budget_epochs: int = 0,
    config: TrainConfig | None = None,
    log: Callable[[str], None] = print,
) -> Advice:
    """Measure and recommend. ``scratch``: the same architecture, randomly initialised."""
    counts = np.bincount([label for _, label in data.splits.train]) if data.splits else None
    if counts is None:
        counts = np.bincount([int(data.train_eval[i][1]) for i in range(len(data.train_eval))])
    per_class_min = int(counts.min())
    measures = {}
    for name, backbone in (("pretrained", pretrained), ("scratch", scratch)):
        features, labels = dataset_features(backbone, data.train_eval)
        x, y = features.numpy().astype(np.float64), labels.numpy()
        measures[name] = (probe_accuracy(x, y), logme(x, y))
        log(f"{name} features: linear-probe accuracy {measures[name][0]:.4f}, LogME {measures[name][1]:.4f}")
    (p_probe, p_logme), (s_probe, s_logme) = measures["pretrained"], measures["scratch"]
    size, closeness = size_of(per_class_min), closeness_of(p_probe)
    reasons = [
        f"{per_class_min} training images in the smallest class → {size} data",
        f"pretrained linear probe {p_probe:.3f} (random init: {s_probe:.3f}) → target {closeness} to pretraining",
    ]
    negative = p_probe <= s_probe or p_logme <= s_logme
    if negative:
        reasons.append("pretrained features are no better than random ones: likely negative transfer")
    budget = {}
    if budget_epochs > 0:
        base = config or TrainConfig()
        cfg = TrainConfig(**{**base.to_dict(), "epochs": budget_epochs, "progress": False})
        quiet = lambda *_: None  # noqa: E731
        transfer = train_classifier(data, pretrained, "feature-extraction", cfg, log=quiet).metrics.accuracy
        from_scratch = train_classifier(data, scratch, "fine-tune", cfg, log=quiet).metrics.accuracy
        budget = {"epochs": budget_epochs, "transfer": transfer, "scratch": from_scratch}
        log(f"{budget_epochs}-epoch budget: feature extraction {transfer:.4f} vs from scratch {from_scratch:.4f}")
        if from_scratch >= transfer:
            negative = True
            reasons.append(f"from scratch ({from_scratch:.3f}) matched or beat transfer ({transfer:.3f}) on a budget")
    strategy = "fine-tune (from scratch: --weights none), or another backbone" if negative else TABLE[(size, closeness)]
    return Advice(
        strategy, size, closeness, per_class_min, p_probe, s_probe, p_logme, s_logme, negative, budget, reasons
    )
