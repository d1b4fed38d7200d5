import gzip
import struct

import numpy as np
import pytest

from transferkit.data.fashion_mnist import balanced_subset, load_fashion_mnist
from transferkit.errors import DataError


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_reads_idx_files(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([4, 0, 9]))
    x, y = load_fashion_mnist("test", tmp_path)
    assert x.shape == (3, 28, 28) and np.array_equal(x.numpy(), images) and y.tolist() == [4, 0, 9]


def test_truncated_idx_and_missing_files(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28)))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("test", tmp_path)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">HBBI", 0, 8, 1, 5) + b"\x00\x01")
    with pytest.raises(DataError, match="truncated"):
        load_fashion_mnist("test", tmp_path)


def test_balanced_subset():
    import torch

    labels = torch.tensor([0] * 10 + [1] * 5)
    picked = balanced_subset(labels, 3)
    assert sorted(labels[picked].tolist()) == [0, 0, 0, 1, 1, 1]
