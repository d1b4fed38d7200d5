"""Experience replay with a reservoir buffer (Vitter's algorithm R; Chaudhry et al., 2019):
a fixed number of past examples, each seen example kept with equal probability; every
training batch is extended with as many samples drawn from the buffer."""

from __future__ import annotations

import torch
from torch import Tensor

from transferkit.continual.base import ContinualMethod, continual_methods


class ReservoirBuffer:
    def __init__(self, capacity: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.seen = 0
        self._size = 0
        self.x: Tensor | None = None
        self.y: Tensor | None = None
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self._size

    def add(self, x: Tensor, y: Tensor) -> None:
        for xi, yi in zip(x, y):
            if self.x is None:
                self.x = xi.new_empty((self.capacity, *xi.shape))
                self.y = yi.new_empty((self.capacity,), dtype=torch.long)
            if self._size < self.capacity:
                self.x[self._size], self.y[self._size] = xi, yi
                self._size += 1
            else:
                j = int(torch.randint(0, self.seen + 1, (1,), generator=self.generator))
                if j < self.capacity:
                    self.x[j], self.y[j] = xi, yi
            self.seen += 1

    def sample(self, n: int) -> tuple[Tensor, Tensor]:
        idx = torch.randint(0, self._size, (min(n, self._size),), generator=self.generator)
        return self.x[idx], self.y[idx]

    @property
    def items(self) -> tuple[Tensor, Tensor]:
        return self.x[: self._size], self.y[: self._size]


@continual_methods.register("replay")
class Replay(ContinualMethod):
    name = "replay"

    def __init__(self, capacity: int = 200, seed: int = 0) -> None:
        self.buffer = ReservoirBuffer(capacity, seed)

    def batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if len(self.buffer) == 0:
            return x, y
        bx, by = self.buffer.sample(len(x))
        return torch.cat([x, bx.to(x.device)]), torch.cat([y, by.to(y.device)])

    def after_task(self, model, x: Tensor, y: Tensor, task: int) -> None:
        self.buffer.add(x.detach().cpu(), y.detach().cpu())
