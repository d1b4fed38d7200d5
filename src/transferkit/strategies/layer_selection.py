"""``--layers auto``: which layer groups' pooled features to use, chosen by cross-validation.

Candidates are runs of 1–3 consecutive groups ending in the deeper half of the network, plus
the whole deeper half: the region where transferable features live (Yosinski et al., 2014),
searched without trying all 2^n subsets. Each candidate is scored by the cross-validated
accuracy of a linear probe on the *training* features (:func:`transferkit.heads.probe.cross_validate`);
validation and test images are never looked at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from transferkit.heads.probe import cross_validate

SELECTION_CS = (0.01, 0.1, 1.0)


@dataclass(frozen=True)
class LayerChoice:
    """The chosen group names and every candidate's (names, CV accuracy), best first."""

    layers: list[str]
    scores: list[tuple[list[str], float]]


def candidate_sets(names: Sequence[str], longest: int = 3) -> list[list[str]]:
    """Runs of 1…``longest`` consecutive names ending in the deeper half, then the deeper half itself."""
    n = len(names)
    sets: list[list[str]] = []
    for end in range(n // 2, n):
        for length in range(1, longest + 1):
            if end - length + 1 >= 0:
                sets.append(list(names[end - length + 1 : end + 1]))
    half = list(names[n // 2 :])
    if half not in sets:
        sets.append(half)
    return sets


def select_layers(
    features: Mapping[str, np.ndarray | torch.Tensor],
    labels: np.ndarray | torch.Tensor,
    seed: int = 0,
    folds: int = 3,
    extra: Sequence[str] = (),
) -> LayerChoice:
    """The candidate set with the best cross-validated probe accuracy (ties → fewer features, then deeper).

    ``features``: pooled features of every layer group, shallow → deep (``{name: (N, D)}``), and of
    each name in ``extra`` (blocks that are not groups, e.g. ``hog``): every candidate is also tried
    with the ``extra`` blocks beside it, so they are kept only where they raise the CV accuracy.
    With a class of fewer than 2 images nothing can be cross-validated: the last group is used.
    """
    groups = [n for n in features if n not in extra]
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    k = int(y.max()) + 1
    blocks = {n: torch.as_tensor(np.asarray(features[n]), dtype=torch.float32) for n in features}
    base = candidate_sets(groups)
    scores = []
    for subset in base + [s + list(extra) for s in base if extra]:
        x = torch.cat([blocks[n] for n in subset], 1)
        results = cross_validate(x, y, k, SELECTION_CS, folds, seed)
        if not results:
            return LayerChoice([groups[-1]], [])
        depth = max(groups.index(n) for n in subset if n in groups)
        scores.append((subset, max(accuracy for _, accuracy, _ in results), x.shape[1], depth))
    scores.sort(key=lambda s: (-s[1], s[2], -s[3]))
    return LayerChoice(scores[0][0], [(s[0], s[1]) for s in scores])
