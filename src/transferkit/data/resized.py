"""A dataset resized once and kept in memory as uint8: what a loader gives views made on the device.

Views made on the GPU leave the loader one job, resizing; on a machine with few cores even that keeps the
GPU waiting (measured: 64 % of a FixMatch epoch on an H200 with 2 cores, 28-pixel images resized to 96).
The resize does not change between epochs, so it is done once, by the loader's workers, and every epoch
then indexes a tensor. Gray images (one plane shown as three channels) are kept as one plane, a third of the
memory; :class:`~transferkit.data.batch_views.BatchViews` shows them as three channels again.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from transferkit.data.dataset import WithTransform
from transferkit.data.transforms import resized_uint8


def _gray(batch: Tensor) -> bool:
    return batch.shape[1] == 3 and bool((batch[:, 0] == batch[:, 1]).all() and (batch[:, 1] == batch[:, 2]).all())


def resize_once(
    dataset: Dataset, size: int, interpolation: str = "bilinear", workers: int = 0, max_gb: float = 4.0
) -> tuple[Dataset, str]:
    """``dataset`` (raw images with ``label(i)``) resized to ``size`` as uint8, and what was done (for the log).

    In memory as a ``TensorDataset`` of (images, labels) when it takes at most ``max_gb`` (counted as three
    channels); else the same images resized by the loader at every access.
    """
    resize = resized_uint8(size, interpolation)
    gigabytes = len(dataset) * 3 * size * size / 2**30  # type: ignore[arg-type]
    if gigabytes > max_gb:
        note = f"resized by the loader (in memory they would take {gigabytes:.1f} GB > cache_max_gb={max_gb:g})"
        return WithTransform(dataset, resize), note  # type: ignore[arg-type]
    loader = DataLoader(WithTransform(dataset, resize), batch_size=256, num_workers=workers)  # type: ignore[arg-type]
    chunks, labels = [], []
    for images, targets in loader:
        chunks.append(images[:, :1].clone() if _gray(images) else images)
        labels.append(torch.as_tensor(targets))
    if any(chunk.shape[1] == 3 for chunk in chunks):
        chunks = [chunk.expand(-1, 3, -1, -1) for chunk in chunks]
    images = torch.cat(chunks)
    note = f"resized once and kept in memory ({images.numel() / 2**30:.2f} GB, {images.shape[1]} channel(s))"
    return TensorDataset(images, torch.cat(labels)), note
