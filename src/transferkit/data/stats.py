"""Per-channel mean and standard deviation of a dataset, for normalising with its own statistics."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


def compute_mean_std(
    dataset: Dataset, batch_size: int = 64, num_workers: int = 0
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std over all pixels of ``dataset`` (images must share one size: resize first).

    Accumulates in float64 so large datasets do not lose precision.
    """
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    count = 0
    for images, _ in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        images = images.double()
        total += images.sum(dim=(0, 2, 3))
        squares += images.pow(2).sum(dim=(0, 2, 3))
        count += images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean.pow(2)).clamp_min(1e-12).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
