"""Run few-shot methods on base/novel class splits and report accuracy ± 95% CI."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from transferkit.errors import ConfigError
from transferkit.fewshot.base import FewShotMethod, fewshot_methods
from transferkit.fewshot.episodes import EpisodeSampler, confidence_interval


@dataclass(frozen=True)
class FewShotResult:
    method: str
    way: int
    shot: int
    episodes: int
    accuracy: float
    ci95: float
    train_seconds: float
    eval_seconds: float


def split_classes(labels: Tensor, novel: int | Sequence[int], seed: int = 0) -> tuple[list[int], list[int]]:
    """(base, novel) class lists: ``novel`` classes drawn at random (seeded), or the given ones."""
    classes = sorted(int(c) for c in torch.unique(torch.as_tensor(labels)))
    if isinstance(novel, int):
        if not 0 < novel < len(classes):
            raise ConfigError(f"Need 0 < novel classes < {len(classes)} (all classes), got {novel}.")
        chosen = sorted(np.random.default_rng(seed).choice(classes, novel, replace=False).tolist())
    else:
        chosen = sorted(int(c) for c in novel)
        missing = set(chosen) - set(classes)
        if missing:
            raise ConfigError(f"Novel classes {sorted(missing)} have no images.")
    return [c for c in classes if c not in chosen], chosen


def evaluate_episodes(method: FewShotMethod, sampler: EpisodeSampler, episodes: int) -> tuple[float, float]:
    method.eval()
    accuracies = []
    with torch.no_grad():
        for e in sampler(episodes):
            logits = method.predict(e.support, e.support_labels, e.query, sampler.way)
            accuracies.append(float((logits.argmax(1) == e.query_labels).float().mean()))
    return confidence_interval(accuracies)


def run_fewshot(
    features: Tensor,
    labels: Tensor,
    novel_classes: Sequence[int],
    methods: Sequence[str],
    way: int = 5,
    shots: Sequence[int] = (1, 5),
    query: int = 15,
    episodes: int = 600,
    meta_episodes: int = 1000,
    meta_lr: float = 1e-3,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[FewShotResult]:
    """Meta-train each method on base-class episodes, evaluate on the same novel-class episodes.

    Every method sees identical evaluation episodes (same seed), so differences are paired.
    """
    features = torch.as_tensor(features, dtype=torch.float32)
    labels = torch.as_tensor(labels, dtype=torch.long)
    novel_mask = torch.isin(labels, torch.as_tensor(list(novel_classes)))
    results = []
    for shot in shots:
        test = EpisodeSampler(features[novel_mask], labels[novel_mask], way, shot, query, seed)
        base = None
        if (~novel_mask).any():
            base_labels = labels[~novel_mask]
            base_way = min(way, len(torch.unique(base_labels)))
            base = EpisodeSampler(features[~novel_mask], base_labels, base_way, shot, query, seed + 1)
        for name in methods:
            torch.manual_seed(seed)
            cls = fewshot_methods.get(name)
            kwargs = {"way": way} if name in ("maml", "reptile") else {}
            method = cls(features.shape[1], **kwargs)
            started = time.perf_counter()
            if base is not None:
                if name in ("maml", "reptile") and base.way != way:
                    raise ConfigError(f"{name} meta-trains {way}-way episodes but only {base.way} base classes exist.")
                method.meta_train(base, meta_episodes if method.episodic else 0, meta_lr)
            elif method.episodic:
                log(f"{name}: no base classes to meta-train on; evaluating the untrained initialisation.")
            trained = time.perf_counter()
            accuracy, ci = evaluate_episodes(method, test, episodes)
            result = FewShotResult(
                name, way, shot, episodes, accuracy, ci, trained - started, time.perf_counter() - trained
            )
            log(f"{way}-way {shot}-shot {name:10s} {100 * accuracy:6.2f} ± {100 * ci:.2f} %")
            results.append(result)
    return results
