"""One seeding helper: every random stream in transferkit is derived from the user's seed here.

``derive_seed(seed, index, stream)`` gives the seed of item ``index`` (an epoch, a task, a view)
of a named stream; distinct streams use distinct strides so their seeds do not collide.
Epoch ``e`` of any training run reseeds Python, NumPy and torch with ``derive_seed(seed, e)``,
which is what makes a resumed run continue exactly.
"""

from __future__ import annotations

import random

import numpy as np
import torch

STRIDES = {"epoch": 1_000_003, "loader": 7919, "semi": 104_729}  # "semi": the strong views of self-training


def derive_seed(seed: int, index: int = 0, stream: str = "epoch") -> int:
    """``(seed × stride + index) mod 2³¹`` for the stream's stride."""
    return (seed * STRIDES[stream] + index) % (2**31)


def seed_everything(seed: int, index: int = 0, stream: str = "epoch") -> None:
    """Seed Python's, NumPy's and torch's global generators with :func:`derive_seed`."""
    value = derive_seed(seed, index, stream)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def generator(seed: int, index: int = 0, stream: str = "epoch") -> torch.Generator:
    """A fresh ``torch.Generator`` seeded with :func:`derive_seed`."""
    return torch.Generator().manual_seed(derive_seed(seed, index, stream))


def item_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of item ``index`` in epoch ``epoch``: independent of which process or worker loads it."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])
