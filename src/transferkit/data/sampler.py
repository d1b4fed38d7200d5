"""Deterministic per-epoch sampling, sharded across processes.

The order of epoch ``e`` depends only on ``(seed, e)``, never on how many epochs ran in
this process: a resumed run sees exactly the batches of an uninterrupted one. Rank ``r``
of ``w`` takes positions ``r, r + w, r + 2w, …``, so the union of the ranks' k-th batches
is the single-process k-th batch (DDP then matches single-process training).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from transferkit.seeding import generator as generator_for
from transferkit.seeding import item_seed


class EpochSampler(Sampler[int]):
    """Shuffled (or weighted) indices for one epoch, one shard per rank.

    Args:
        num_samples: Dataset length.
        seed: Base seed.
        shuffle: Random order (training) or identity order (evaluation).
        weights: Per-sample weights: draw ``num_samples`` indices with replacement (class balancing).
        rank, world_size: This process's shard.
        epoch: Which epoch's order. There is deliberately no ``set_epoch``: Lightning Fabric's loader
            calls ``sampler.set_epoch(<times this loader was iterated>)``, which for a loader built per
            epoch is always 0 and gave every epoch epoch 0's order. A loader kept across epochs
            (persistent workers) assigns ``epoch`` itself before each one.
        keyed: Yield ``(epoch, index)`` pairs for :class:`EpochItems` instead of bare indices.
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
        keyed: bool = False,
    ) -> None:
        self.keyed = keyed
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
        mine = order[self.rank :: self.world_size]
        return iter([(self.epoch, i) for i in mine] if self.keyed else mine)

    def __len__(self) -> int:
        return -(-self.num_samples // self.world_size)


class EpochItems(Dataset):
    """``dataset`` addressed by ``(epoch, index)`` (see ``EpochSampler(keyed=True)``); each item is drawn
    after seeding torch with :func:`transferkit.seeding.item_seed`.

    An item's augmentation then depends on ``(seed, epoch, index)`` only, not on which loader worker
    drew it or how many items that worker drew before: loader workers can persist across epochs,
    any number of them gives the same batches, and a resumed run continues exactly.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        torch.manual_seed(item_seed(self.seed, epoch, index))
        return self.dataset[index]
