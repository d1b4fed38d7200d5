"""N-way K-shot episodes and their evaluation with a 95% confidence interval."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from transferkit.errors import ConfigError


@dataclass(frozen=True)
class Episode:
    """Support and query sets; labels are 0..way-1 in the episode's own class order."""

    support: Tensor
    support_labels: Tensor
    query: Tensor
    query_labels: Tensor
    classes: tuple[int, ...]


class EpisodeSampler:
    """Draws episodes from ``features`` (N, D) with integer ``labels``: ``way`` classes, ``shot``
    support and ``query`` query examples per class, disjoint. Episode ``i`` depends only on
    ``(seed, i)``, so evaluations are reproducible and comparable across methods."""

    def __init__(self, features: Tensor, labels: Tensor, way: int, shot: int, query: int = 15, seed: int = 0) -> None:
        self.features = torch.as_tensor(features, dtype=torch.float32)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.way, self.shot, self.query, self.seed = way, shot, query, seed
        self.by_class = {int(c): torch.nonzero(self.labels == c).flatten() for c in torch.unique(self.labels)}
        usable = [c for c, idx in self.by_class.items() if len(idx) >= shot + query]
        if len(usable) < way:
            raise ConfigError(
                f"A {way}-way {shot}-shot episode with {query} queries per class needs {way} classes with at "
                f"least {shot + query} images; only {len(usable)} of {len(self.by_class)} classes have that many. "
                "Lower --way, --shot or --query."
            )
        self.classes = sorted(usable)

    def episode(self, index: int) -> Episode:
        rng = np.random.default_rng([self.seed, index])
        chosen = rng.choice(self.classes, self.way, replace=False)
        s_idx, q_idx = [], []
        for c in chosen:
            pool = self.by_class[int(c)].numpy()
            picks = rng.choice(pool, self.shot + self.query, replace=False)
            s_idx.append(picks[: self.shot])
            q_idx.append(picks[self.shot :])
        labels = torch.arange(self.way)
        return Episode(
            self.features[np.concatenate(s_idx)],
            labels.repeat_interleave(self.shot),
            self.features[np.concatenate(q_idx)],
            labels.repeat_interleave(self.query),
            tuple(int(c) for c in chosen),
        )

    def __call__(self, episodes: int, start: int = 0) -> Iterator[Episode]:
        for i in range(start, start + episodes):
            yield self.episode(i)


def confidence_interval(accuracies: list[float] | np.ndarray) -> tuple[float, float]:
    """(mean, half-width of the 95% normal confidence interval: 1.96 σ / √n)."""
    acc = np.asarray(accuracies, dtype=np.float64)
    if len(acc) < 2:
        return float(acc.mean()), float("nan")
    return float(acc.mean()), float(1.96 * acc.std(ddof=1) / math.sqrt(len(acc)))
