"""Datasets of labelled images: files on disk, or tensors in memory."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from transferkit.data.folders import Sample
from transferkit.data.images import DEFAULT_MAX_PIXELS, load_image
from transferkit.errors import BadImageError, ConfigError, DataError

Transform = Callable[[Tensor], Tensor]
OnBadImage = Literal["skip", "error"]


def verify_images(
    samples: Sequence[Sample],
    on_bad_image: OnBadImage = "skip",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 2,
) -> list[Sample]:
    """Decode every image once; drop (with one warning and a count) or reject the bad ones.

    Raises:
        BadImageError: with ``on_bad_image="error"``, for the first bad file.
        DataError: when no image is readable.
    """
    if on_bad_image not in ("skip", "error"):
        raise ConfigError(f"on_bad_image must be 'skip' or 'error', got {on_bad_image!r}.")

    def check(sample: Sample) -> BadImageError | None:
        try:
            load_image(sample[0], max_pixels)
        except BadImageError as exc:
            return exc
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        problems = list(pool.map(check, samples))
    bad = [p for p in problems if p is not None]
    if bad and on_bad_image == "error":
        raise bad[0]
    good = [s for s, p in zip(samples, problems) if p is None]
    if bad:
        listed = "; ".join(f"{b.path} ({b.reason})" for b in bad[:5])
        warnings.warn(
            f"Skipped {len(bad)} unreadable image(s) of {len(samples)}: {listed}"
            f"{' …' if len(bad) > 5 else ''}. Use on_bad_image='error' to stop instead.",
            stacklevel=2,
        )
    if samples and not good:
        raise DataError(f"None of the {len(samples)} images could be read; first problem: {bad[0]}.")
    return good


class ImageFileDataset(Dataset):
    """Images on disk with integer labels; yields ``(transform(image), label)``.

    Args:
        samples: ``(path, label)`` pairs (see :func:`transferkit.data.find_splits`).
        transform: Applied to the decoded (3, H, W) float image.
        max_pixels: Decompression-bomb guard.
    """

    def __init__(
        self, samples: Sequence[Sample], transform: Transform | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> list[int]:
        """All labels, in order (O(N): for whole-dataset statistics, not per item; see :meth:`label`)."""
        return [label for _, label in self.samples]

    def label(self, index: int) -> int:
        return self.samples[index][1]

    @property
    def paths(self) -> list[Path]:
        return [path for path, _ in self.samples]

    def raw(self, index: int) -> Tensor:
        return load_image(self.samples[index][0], self.max_pixels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.raw(index)
        return (self.transform(image) if self.transform else image), self.label(index)


class TensorImageDataset(Dataset):
    """Images already in memory: (N, H, W) or (N, C, H, W) uint8/float tensors with labels."""

    def __init__(self, images: Tensor, labels: Sequence[int] | Tensor, transform: Transform | None = None) -> None:
        if len(images) != len(labels):
            raise DataError(f"{len(images)} images but {len(labels)} labels.")
        self.images = images
        self._labels = torch.as_tensor(labels, dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labels(self) -> list[int]:
        """All labels, in order (O(N): for whole-dataset statistics, not per item; see :meth:`label`)."""
        return self._labels.tolist()

    def label(self, index: int) -> int:
        return int(self._labels[index])

    def raw(self, index: int) -> Tensor:
        image = self.images[index]
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        if image.ndim == 2:
            image = image.unsqueeze(0)
        return image.expand(3, -1, -1) if image.shape[0] == 1 else image

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.raw(index)
        return (self.transform(image) if self.transform else image), self.label(index)


class WithTransform(Dataset):
    """The same images with another transform (train and eval views of one dataset)."""

    def __init__(self, base: ImageFileDataset | TensorImageDataset, transform: Transform | None) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)

    @property
    def labels(self) -> list[int]:
        return self.base.labels

    def label(self, index: int) -> int:
        return self.base.label(index)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.base.raw(index)
        return (self.transform(image) if self.transform else image), self.base.label(index)
