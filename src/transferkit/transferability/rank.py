"""Rank candidate backbones for a dataset by transferability scores, without training."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from torch.utils.data import Dataset

from transferkit.backbones import ModelBackbone, create_backbone
from transferkit.transferability.base import check_inputs, scores

DEFAULT_SCORES = ("logme", "leep", "nce", "hscore")
GMM = "GMM pseudo-labels (N-LEEP)"
HEAD = "pretrained classifier"
SOURCE_SCORES = ("leep", "nce")  # the scores that need source-label posteriors


@dataclass
class BackboneScore:
    """One candidate's scores on the target data (higher is better for every score)."""

    backbone: str
    weights: str
    num_features: int
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    source_labels: str = ""  # where LEEP/NCE's source posteriors came from: HEAD or GMM


ImageSource = Callable[[ModelBackbone, "int | None"], "tuple[Dataset, np.ndarray]"]
"""``(backbone, image_size) -> (dataset with the backbone's evaluation transform, labels)``."""


def rank_backbones(
    data: ImageSource,
    backbones: Sequence[str | ModelBackbone],
    weights: str | None = "imagenet",
    score_names: Sequence[str] = DEFAULT_SCORES,
    image_size: int | None = None,
    batch_size: int = 64,
    max_images: int | None = 2000,
    seed: int = 0,
    include_scratch: bool = False,
    log: Callable[[str], None] = print,
    source_labels: str = "auto",
) -> list[BackboneScore]:
    """Score every backbone's features of ``data``'s training images; best LogME (or first score) first.

    Args:
        data: The target's training images for a backbone: ``data(backbone, image_size)`` returns them
            with that backbone's evaluation transform, and their labels (see
            :func:`transferkit.api.training_images`, which reads a folder or CSV as ``fit`` does).
        backbones: Names (``"efficientnet_lite0"``, ``"tv:resnet18"``) or backbone instances.
        weights: Weights for named backbones (``"imagenet"``, a file, or ``None`` for random
            initialisation: a from-scratch reference point that pretrained weights should beat).
        score_names: Scores to compute, from ``transferkit.transferability.scores``.
        max_images: Stratified subsample of at most this many images (scores are O(N·D²)).
        include_scratch: Also score each named backbone randomly initialised: pretrained features
            scoring below their own random initialisation are a sign of negative transfer.
        source_labels: Where LEEP and NCE get the source model's label posteriors: ``head`` (the
            pretrained classifier, e.g. ImageNet's 1000 classes: the papers' definition), ``gmm``
            (a Gaussian mixture on the features: N-LEEP, Li et al. 2021, for backbones without a
            head), or ``auto``: heads when every candidate has one, else GMM for all (one kind
            per table, so the column compares like with like).

    Named backbones whose weights are not available offline are skipped with a message.
    """
    from transferkit.errors import ConfigError
    from transferkit.inference import dataset_features

    for name in score_names:
        scores.get(name)  # unknown names fail before any extraction
    from transferkit.errors import WeightsNotFoundError

    if source_labels not in ("auto", "head", "gmm"):
        raise ConfigError(f"source_labels must be auto, head or gmm, got {source_labels!r}.")
    jobs: list[tuple[str | ModelBackbone, str | None]] = [(c, weights) for c in backbones]
    if include_scratch:
        jobs += [(c, None) for c in backbones if isinstance(c, str) and weights is not None]
    extracted = []
    for candidate, candidate_weights in jobs:
        started = time.perf_counter()
        try:
            bb = create_backbone(candidate, weights=candidate_weights) if isinstance(candidate, str) else candidate
        except WeightsNotFoundError as exc:
            log(f"skipped {candidate}: {exc}")
            continue
        dataset, labels_all = data(bb, image_size)
        if max_images is not None and len(dataset) > max_images and len(labels_all) == len(dataset):
            from sklearn.model_selection import train_test_split
            from torch.utils.data import Subset

            keep, _ = train_test_split(
                np.arange(len(dataset)), train_size=max_images, stratify=labels_all, random_state=seed
            )
            dataset = Subset(dataset, sorted(keep.tolist()))
        features, labels = dataset_features(bb, dataset, batch_size)
        f, y = check_inputs(features.numpy(), labels.numpy())
        label = (
            ("random init" if candidate_weights is None else str(candidate_weights))
            if isinstance(candidate, str)
            else "given"
        )
        probs = _head_posteriors(bb, features)
        extracted.append((BackboneScore(bb.name, label, bb.num_features), f, y, probs, time.perf_counter() - started))
    results = _score_all(extracted, score_names, source_labels, log)
    key = "logme" if "logme" in score_names else score_names[0]
    return sorted(results, key=lambda r: r.scores[key], reverse=True)


def _head_posteriors(backbone: ModelBackbone, features) -> np.ndarray | None:
    head = backbone.source_head
    if head is None:
        return None
    import torch

    with torch.no_grad():
        return head.to(features.device)(features.float()).softmax(1).double().numpy()


def _score_all(extracted, score_names, source_labels: str, log) -> list[BackboneScore]:
    from transferkit.errors import ConfigError

    have_heads = all(probs is not None for _, _, _, probs, _ in extracted)
    if source_labels == "head" and not have_heads:
        missing = [row.backbone for row, _, _, probs, _ in extracted if probs is None]
        raise ConfigError(f"source_labels='head' but {missing} have no pretrained classifier; use auto or gmm.")
    use_heads = source_labels == "head" or (source_labels == "auto" and have_heads)
    if any(n in SOURCE_SCORES for n in score_names):
        log(f"LEEP/NCE source labels: {HEAD if use_heads else GMM}.")
    results = []
    for row, f, y, probs, seconds in extracted:
        started = time.perf_counter()
        row.source_labels = HEAD if use_heads else GMM
        for name in score_names:
            row.scores[name] = float(scores.get(name)(f, y, probs if use_heads else None))
        row.seconds = seconds + time.perf_counter() - started
        log(f"{row.backbone} ({row.weights}): " + ", ".join(f"{k} {v:.4f}" for k, v in row.scores.items()))
        results.append(row)
    return results


def score_label(name: str, source: str) -> str:
    """Column name of a score: LEEP/NCE on GMM pseudo-labels are N-LEEP / N-NCE."""
    return f"n-{name}" if source == GMM and name in SOURCE_SCORES else name


def format_ranking(rows: Sequence[BackboneScore]) -> str:
    """A plain-text table, best first."""
    names = list(rows[0].scores) if rows else []
    source = rows[0].source_labels if rows else ""
    labels = [score_label(n, source) for n in names]
    header = f"{'rank':>4}  {'backbone':32s} {'weights':12s} " + " ".join(f"{n:>9s}" for n in labels) + "  seconds"
    lines = [header, "-" * len(header)]
    for i, r in enumerate(rows, 1):
        values = " ".join(f"{r.scores[n]:9.4f}" for n in names)
        lines.append(f"{i:>4}  {r.backbone:32s} {r.weights:12s} {values}  {r.seconds:7.1f}")
    if any(n in SOURCE_SCORES for n in names):
        lines.append(f"LEEP/NCE source labels: {source}.")
    return "\n".join(lines)
