"""Deterministic per-epoch sampling, sharded across processes.

The order of epoch ``e`` depends only on ``(seed, e)``, never on how many epochs ran in
this process: a resumed run sees exactly the batches of an uninterrupted one. Rank ``r``
of ``w`` takes positions ``r, r + w, r + 2w, …``, so the union of the ranks' k-th batches
is the single-process k-th batch (DDP then matches single-process training).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from transferkit.seeding import generator as generator_for


class EpochSampler(Sampler[int]):
    """Shuffled (or weighted) indices for one epoch, one shard per rank.

    Args:
        num_samples: Dataset length.
        seed: Base seed.
        shuffle: Random order (training) or identity order (evaluation).
        weights: Per-sample weights: draw ``num_samples`` indices with replacement (class balancing).
        rank, world_size: This process's shard.
        epoch: Which epoch's order, fixed at construction. There is deliberately no ``set_epoch``:
            Lightning Fabric's loader calls ``sampler.set_epoch(<times this loader was iterated>)``,
            which for a loader built per epoch is always 0 and gave every epoch epoch 0's order.
    """

    def __init__(
        self,
        num_samples: int,
        seed: int = 0,
        shuffle: bool = True,
        weights: Sequence[float] | None = None,
        rank: int = 0,
        world_size: int = 1,
        epoch: int = 0,
    ) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.shuffle = shuffle
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.rank = rank
        self.world_size = world_size
        self.epoch = epoch

    def _order(self) -> list[int]:
        generator = generator_for(self.seed, self.epoch)
        if self.weights is not None:
            return torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator).tolist()
        if self.shuffle:
            return torch.randperm(self.num_samples, generator=generator).tolist()
        return list(range(self.num_samples))

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        if self.world_size > 1:  # pad so every rank gets the same number of steps
            order += order[: (-len(order)) % self.world_size]
        return iter(order[self.rank :: self.world_size])

    def __len__(self) -> int:
        return -(-self.num_samples // self.world_size)
