"""A linear probe solved to convergence: multinomial logistic regression on fixed features.

The features are standardised, the L2-penalised cross-entropy is minimised with full-batch
L-BFGS (the same objective as scikit-learn's ``LogisticRegression(C=...)``), and ``C`` is
chosen by stratified cross-validation on the training features only. The standardisation is
folded into the returned weights, so the probe is one ``Linear`` layer on the raw features:
a :class:`~transferkit.heads.linear.LinearHead` can take it as is (:func:`load_into_head`).

Why not a few epochs of SGD on the head: a head on cached features is cheap to train to
convergence, and a fixed small epoch budget leaves it badly under-trained on small data.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.errors import ConfigError

DEFAULT_CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
MAX_CV_ROWS = 10_000  # C is chosen on at most this many rows (stratified); the final fit uses all
SMALL = 5e7  # multiply-adds per evaluation below which one thread is faster (no fork/join, no oversubscription)


@contextmanager
def _threads_for(work: float):
    """One intra-op thread for small problems: each L-BFGS step is then microseconds, and a second busy
    process cannot stall it (measured: 0.02 s on one thread vs 0.85 s on two when the other core is busy)."""
    previous = torch.get_num_threads()
    if work < SMALL and previous > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class LinearProbe:
    """``logits = features @ weight.T + bias`` on raw (unstandardised) features.

    ``C`` is the inverse L2 strength that won the cross-validation (``cv_accuracy``, ``cv_loss``).
    """

    weight: Tensor
    bias: Tensor
    C: float
    cv_accuracy: float
    cv_loss: float

    def logits(self, features: Tensor) -> Tensor:
        return features.to(self.weight) @ self.weight.T + self.bias


def _standardise(x: Tensor) -> tuple[Tensor, Tensor]:
    return x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)


def fit_logistic(
    x: Tensor,
    y: Tensor,
    num_classes: int,
    C: float,
    max_iter: int = 200,
    init: tuple[Tensor, Tensor] | None = None,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Minimise ``mean CE + ||W||² / (2·C·N)`` (scikit-learn's objective divided by ``C·N``) with L-BFGS.

    ``label_smoothing`` smooths the targets of the cross-entropy, as the training loss does.

    Shape:
        x: (N, D) features (standardise them first). y: (N,) class indices. Returns W (K, D), b (K,).
    """
    n, d = x.shape
    weight = (init[0].clone() if init else torch.zeros(num_classes, d, dtype=x.dtype)).requires_grad_(True)
    bias = (init[1].clone() if init else torch.zeros(num_classes, dtype=x.dtype)).requires_grad_(True)
    l2 = 1.0 / (2.0 * C * n)
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, y, label_smoothing=label_smoothing) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad(), _threads_for(n * d * num_classes):
        optimizer.step(closure)
    return weight.detach(), bias.detach()


def _folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(y).min())
    folds = min(folds, smallest)
    if folds < 2:
        return []
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _subsample(x: Tensor, y: Tensor, max_rows: int, seed: int) -> tuple[Tensor, Tensor]:
    """At most ``max_rows`` rows, every class keeping its share (stratified, seeded); all rows when fewer."""
    if len(y) <= max_rows:
        return x, y
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(np.arange(len(y)), train_size=max_rows, stratify=y.numpy(), random_state=seed)
    keep = torch.as_tensor(np.sort(keep))
    return x[keep], y[keep]


def cross_validate(
    x: Tensor,
    y: Tensor,
    num_classes: int,
    Cs: Sequence[float],
    folds: int = 3,
    seed: int = 0,
    label_smoothing: float = 0.0,
    max_rows: int = MAX_CV_ROWS,
) -> list[tuple[float, float, float]]:
    """(C, mean held-out accuracy, mean held-out cross-entropy) for every ``C``; ``[]`` if a class has < 2 examples.

    Each fold is standardised with its own training part's statistics; successive ``C``
    values warm-start from the previous solution (a regularisation path). Past ``max_rows``
    rows, a stratified subsample of that many is cross-validated: the CV of 18 fits then costs
    the same at 60k rows as at 10k, while the final fit (:func:`linear_probe`) still sees every row.
    """
    x, y = _subsample(x, y, max_rows, seed)
    splits = _folds(y.numpy(), folds, seed)
    if not splits:
        return []
    scores = {C: [] for C in Cs}
    for train_idx, test_idx in splits:
        xt, yt = x[train_idx], y[train_idx]
        mean, std = _standardise(xt)
        xt, xv, yv = (xt - mean) / std, (x[test_idx] - mean) / std, y[test_idx]
        init = None
        for C in sorted(Cs):
            init = fit_logistic(xt, yt, num_classes, C, init=init, label_smoothing=label_smoothing)
            logits = xv @ init[0].T + init[1]
            accuracy = float((logits.argmax(1) == yv).float().mean())
            scores[C].append((accuracy, float(F.cross_entropy(logits, yv))))
    return [(C, float(np.mean([a for a, _ in s])), float(np.mean([c for _, c in s]))) for C, s in scores.items()]


def linear_probe(
    features: Tensor | np.ndarray,
    labels: Tensor | np.ndarray,
    num_classes: int | None = None,
    Cs: Sequence[float] = DEFAULT_CS,
    folds: int = 3,
    seed: int = 0,
    label_smoothing: float = 0.0,
) -> LinearProbe:
    """Standardised multinomial logistic regression, ``C`` by ``folds``-fold CV (accuracy, ties → lower loss).

    ``label_smoothing``: fit the same smoothed loss a later fine-tuning stage trains with, so that
    stage starts at its own optimum for the head rather than pulling over-confident logits back.

    With a single ``C`` nothing is cross-validated; with fewer than 2 examples in some class
    nothing can be: ``C = 0.1`` (moderate regularisation) is used. ``cv_accuracy`` is then NaN.

    Example:
        >>> x = torch.randn(60, 4); y = (x[:, 0] > 0).long()
        >>> probe = linear_probe(x, y)
        >>> float((probe.logits(x).argmax(1) == y).float().mean()) > 0.9
        True
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if x.ndim != 2 or len(x) != len(y) or len(y) == 0:
        raise ConfigError(f"A linear probe needs (N, D) features and N labels, got {tuple(x.shape)} and {len(y)}.")
    k = int(num_classes if num_classes is not None else int(y.max()) + 1)
    results = cross_validate(x, y, k, Cs, folds, seed, label_smoothing) if len(Cs) > 1 else []
    if len(Cs) == 1:
        C, accuracy, loss = float(Cs[0]), float("nan"), float("nan")
    elif results:
        C, accuracy, loss = max(results, key=lambda r: (r[1], -r[2]))
    else:
        C, accuracy, loss = 0.1, float("nan"), float("nan")
    mean, std = _standardise(x)
    weight, bias = fit_logistic((x - mean) / std, y, k, C, label_smoothing=label_smoothing)
    weight = weight / std
    bias = bias - weight @ mean
    return LinearProbe(weight.float(), bias.float(), C, accuracy, loss)


def probe_accuracy(
    features: Tensor | np.ndarray, labels: Tensor | np.ndarray, C: float = 0.5, folds: int = 5, seed: int = 0
) -> float:
    """Mean held-out accuracy of the standardised logistic probe at a fixed ``C`` by stratified CV.

    ``folds`` shrinks to the smallest class's count (at least 2); NaN when a class has one example.
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    counts = np.bincount(y.numpy())
    folds = max(2, min(folds, int(counts[counts > 0].min())))
    results = cross_validate(x, y, int(y.max()) + 1, (C,), folds, seed)
    return results[0][1] if results else float("nan")


def load_into_head(probe: LinearProbe, head: nn.Module) -> None:
    """Copy the probe into a head whose last layer is ``fc`` (``LinearHead``) right after the features."""
    fc = getattr(head, "fc", None)
    if not isinstance(fc, nn.Linear) or fc.in_features != probe.weight.shape[1]:
        raise ConfigError("A solved linear probe fits only a linear head (--head linear) directly on the features.")
    with torch.no_grad():
        fc.weight.copy_(probe.weight.to(fc.weight))
        fc.bias.copy_(probe.bias.to(fc.bias))
