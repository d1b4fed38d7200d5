"""Multi-source transfer: combine the features of several pretrained sources (backbones).

- ``concat``: standardised features of every source side by side.
- ``weighted``: each source's block scaled by a weight from its transferability (softmax of
  LogME over sources), so a weak source contributes less.
- ``selective``: greedy forward selection by cross-validated linear-probe accuracy; a source
  joins only if it improves accuracy by more than ``tolerance``. Sources that do not help
  (or hurt, i.e. negative transfer) are reported as dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from transferkit.errors import ConfigError
from transferkit.transferability.base import check_inputs
from transferkit.transferability.logme import logme


@dataclass
class MultiSourceResult:
    mode: str
    selected: list[str]
    weights: dict[str, float]
    cv_accuracy: float
    single_source_accuracy: dict[str, float] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def probe_accuracy(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """The shared linear probe's CV accuracy (:func:`transferkit.heads.probe.probe_accuracy`, ``C = 0.5``)."""
    from transferkit.heads.probe import probe_accuracy as shared

    return shared(features, labels, C=0.5, folds=folds, seed=seed)


def combine_sources(
    sources: Mapping[str, np.ndarray],
    labels: np.ndarray,
    mode: str = "selective",
    tolerance: float = 0.005,
    temperature: float = 1.0,
    log: Callable[[str], None] = print,
) -> tuple[np.ndarray, MultiSourceResult]:
    """(combined features (N, D'), what was chosen and why) for ``sources`` = {name: features}."""
    if mode not in ("concat", "weighted", "selective"):
        raise ConfigError(f"mode must be concat, weighted or selective, got {mode!r}.")
    if len(sources) < 2:
        raise ConfigError(f"Multi-source transfer needs at least 2 sources, got {list(sources)}.")
    blocks, y = {}, None
    for name, x in sources.items():
        x, y = check_inputs(x, labels)
        blocks[name] = _standardise(x)
    assert y is not None
    single = {name: probe_accuracy(x, y) for name, x in blocks.items()}
    for name, acc in single.items():
        log(f"source {name}: linear-probe accuracy {acc:.4f}")
    if mode == "concat":
        weights = {name: 1.0 for name in blocks}
        selected = list(blocks)
    elif mode == "weighted":
        scores = np.array([logme(x, y) for x in blocks.values()])
        w = np.exp((scores - scores.max()) / temperature)
        weights = dict(zip(blocks, (w / w.sum()).tolist()))
        selected = list(blocks)
    else:
        order = sorted(blocks, key=lambda n: single[n], reverse=True)
        selected, best = [order[0]], single[order[0]]
        for name in order[1:]:
            trial = probe_accuracy(np.concatenate([blocks[n] for n in [*selected, name]], 1), y)
            if trial > best + tolerance:
                selected, best = [*selected, name], trial
                log(f"+ {name}: accuracy {trial:.4f}")
            else:
                log(f"- {name}: accuracy {trial:.4f} does not beat {best:.4f}; dropped")
        weights = {name: (1.0 if name in selected else 0.0) for name in blocks}
    combined = np.concatenate([blocks[n] * np.sqrt(weights[n] * len(selected)) for n in selected], 1)
    accuracy = probe_accuracy(combined, y)
    dropped = [n for n in blocks if n not in selected]
    return combined, MultiSourceResult(mode, selected, weights, accuracy, single, dropped)
