"""How far apart two domains are, measured on features (N, D) of each.

- ``mmd``: unbiased squared multi-kernel MMD (Gretton et al., 2012); ≈ 0 for one distribution.
- ``coral``: ``||C_s - C_t||_F^2 / (4 d^2)``, the Deep CORAL distance of covariances.
- ``proxy_a_distance``: ``2 (1 - 2 ε)`` with ε the held-out error of a linear domain classifier
  (Ben-David et al., 2007): 0 when the domains are indistinguishable, 2 when separable.
- ``wasserstein``: exact W2 between equal-size random subsamples (an assignment problem,
  solved with SciPy's Hungarian algorithm).
"""

from __future__ import annotations

import numpy as np
import torch

from transferkit.adaptation.coral import coral_loss
from transferkit.adaptation.dan import mk_mmd2


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def mmd(source, target, max_rows: int = 1000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    s, t = np.asarray(source), np.asarray(target)
    s = s[rng.permutation(len(s))[:max_rows]]
    t = t[rng.permutation(len(t))[:max_rows]]
    return float(mk_mmd2(_as_tensor(s), _as_tensor(t)))


def coral_distance(source, target) -> float:
    return float(coral_loss(_as_tensor(source), _as_tensor(target)))


def proxy_a_distance(source, target, seed: int = 0) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([source, target]).astype(np.float64)
    y = np.concatenate([np.ones(len(source)), np.zeros(len(target))])
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(x_tr)
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x_tr), y_tr)
    error = 1.0 - clf.score(scaler.transform(x_te), y_te)
    return float(np.clip(2.0 * (1.0 - 2.0 * error), 0.0, 2.0))


def wasserstein(source, target, max_rows: int = 500, seed: int = 0) -> float:
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(seed)
    n = min(len(source), len(target), max_rows)
    s = np.asarray(source, dtype=np.float64)[rng.choice(len(source), n, replace=False)]
    t = np.asarray(target, dtype=np.float64)[rng.choice(len(target), n, replace=False)]
    cost = cdist(s, t, "sqeuclidean")
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(cost[rows, cols].mean()))


def domain_shift(source, target, seed: int = 0) -> dict[str, float]:
    """All four measures of the shift between ``source`` and ``target`` features."""
    return {
        "mmd": mmd(source, target, seed=seed),
        "coral": coral_distance(source, target),
        "proxy_a_distance": proxy_a_distance(source, target, seed=seed),
        "wasserstein": wasserstein(source, target, seed=seed),
    }
