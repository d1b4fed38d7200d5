"""Fashion-MNIST read straight from its IDX files, e.g. those of Debian's ``dataset-fashion-mnist``."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from transferkit.errors import DataError

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEBIAN_PACKAGE = "dataset-fashion-mnist"


def default_dir() -> Path:
    """``$TRANSFERKIT_FASHION_MNIST``, else the folder where Debian's package installed the files (asked of dpkg)."""
    if "TRANSFERKIT_FASHION_MNIST" in os.environ:
        return Path(os.environ["TRANSFERKIT_FASHION_MNIST"])
    import subprocess

    try:
        listing = subprocess.run(["dpkg", "-L", DEBIAN_PACKAGE], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    for line in listing.splitlines():
        if line.endswith("train-images-idx3-ubyte.gz"):
            return Path(line).parent
    return Path.cwd() / "fashion-mnist"


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file.")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: header says {shape}, found {array.size} bytes.")
    return array.reshape(shape)


def load_fashion_mnist(split: str = "train", root: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """Images (N, 28, 28) uint8 and labels (N,) of the ``"train"`` (60k) or ``"test"`` (10k) split."""
    root = Path(root) if root is not None else default_dir()
    prefix = {"train": "train", "test": "t10k"}[split]
    files = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        candidates = [root / f"{prefix}-{kind}.gz", root / f"{prefix}-{kind}"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(
                f"Fashion-MNIST not found in {root} (looked for {candidates[0].name}). Install it with "
                "`apt-get install dataset-fashion-mnist`, or set TRANSFERKIT_FASHION_MNIST to a folder "
                "holding the four IDX files."
            )
        files.append(found)
    images, labels = _read_idx(files[0]), _read_idx(files[1])
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def balanced_subset(labels: Tensor, per_class: int, seed: int = 0) -> Tensor:
    """Indices of ``per_class`` random examples of every class."""
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.cat(picks).sort().values


def labelled_split(
    per_class: int, seed: int = 0, val_per_class: int = 30, test_images: int = 2000, root: str | Path | None = None
):
    """A small labelled problem: ``per_class`` training and ``val_per_class`` validation images per class drawn
    from the official training split (``seed`` picks the subset), and ``test_images`` balanced images of the
    official test split (the same ones for every seed). Returns three ``TensorImageDataset`` s."""
    from transferkit.data.dataset import TensorImageDataset

    images, labels = load_fashion_mnist("train", root)
    test_x, test_y = load_fashion_mnist("test", root)
    picked = balanced_subset(labels, per_class + val_per_class, seed)
    picked = picked[torch.randperm(len(picked), generator=torch.Generator().manual_seed(seed))]
    train_idx, val_idx, seen = [], [], [0] * len(CLASSES)
    for i in picked.tolist():
        c = int(labels[i])
        (train_idx if seen[c] < per_class else val_idx).append(i)
        seen[c] += 1
    test_idx = balanced_subset(test_y, test_images // len(CLASSES), 0)
    return (
        TensorImageDataset(images[train_idx], labels[train_idx]),
        TensorImageDataset(images[val_idx], labels[val_idx]),
        TensorImageDataset(test_x[test_idx], test_y[test_idx]),
    )
