"""Content fingerprints of datasets: what a disk cache of their features must be keyed by.

A fingerprint changes when any image (path, size, modification time; or the pixels of an
in-memory tensor), label, order, subset or transform changes. Datasets of unknown kinds have
none (``None``): their features are then never cached on disk, rather than reused wrongly.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from transferkit.data.dataset import ImageFileDataset, TensorImageDataset, WithTransform

# transforms whose output depends on nothing but their input (and their repr's parameters)
DETERMINISTIC = {"Compose", "Resize", "Normalize", "CenterCrop", "ToDtype", "Grayscale", "ToImage", "ToPureTensor"}


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def _files(dataset: ImageFileDataset, digest: Any) -> None:
    for path, label in dataset.samples:
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    digest.update(f"max_pixels={dataset.max_pixels}".encode())


def _update(dataset: Dataset, digest: Any) -> bool:
    """Feed ``dataset``'s content to ``digest``; False when its kind is unknown."""
    digest.update(type(dataset).__name__.encode())
    if isinstance(dataset, ImageFileDataset):
        _files(dataset, digest)
    elif isinstance(dataset, TensorImageDataset):
        digest.update(f"{tuple(dataset.images.shape)}{dataset.images.dtype}".encode())
        digest.update(_tensor_bytes(dataset.images))
        digest.update(_tensor_bytes(dataset._labels))
    elif isinstance(dataset, WithTransform):
        if not _update(dataset.base, digest):
            return False
    elif isinstance(dataset, Subset):
        digest.update(np.asarray(dataset.indices, dtype=np.int64).tobytes())
        return _update(dataset.dataset, digest)
    else:
        return False
    digest.update(repr(getattr(dataset, "transform", None)).encode())
    return True


def fingerprint(dataset: Dataset) -> str | None:
    """SHA-256 of the dataset's items, labels, order and transforms; ``None`` for unknown dataset kinds."""
    digest = hashlib.sha256()
    return digest.hexdigest() if _update(dataset, digest) else None


def _transforms(dataset: Dataset) -> list[Any]:
    found = [getattr(dataset, "transform", None)]
    inner = getattr(dataset, "base", None) or getattr(dataset, "dataset", None)
    return found + (_transforms(inner) if inner is not None else [])


def _steps(transform: Any) -> list[Any]:
    """The leaf steps of a transform: through ``Compose`` and ``SharedChannels`` wrappers."""
    if hasattr(transform, "transforms"):
        return [leaf for step in transform.transforms for leaf in _steps(step)]
    if type(transform).__name__ == "SharedChannels":
        return _steps(transform.inner)
    return [transform]


def is_random(dataset: Dataset) -> bool:
    """Whether an item may differ between two reads (a random augmentation, or a transform not known)."""
    steps = [leaf for transform in filter(None, _transforms(dataset)) for leaf in _steps(transform)]
    return any(type(step).__name__ not in DETERMINISTIC for step in steps)
