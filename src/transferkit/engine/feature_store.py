"""Frozen outputs kept on disk between runs, memory-mapped so that RAM stays bounded.

One entry per key: the SHA-256 of everything the outputs depend on (the encoder's weights and
cut, the dataset's content and transform, the randomness of an augmented view, precision,
layout, batch size and the versions of transferkit, torch and timm; see
:meth:`transferkit.engine.cache.FeatureCache.key_parts`). An entry is a folder ``<key>/`` with
``features.npy`` (float32, (N, ...)), ``labels.npy`` (int64) and ``meta.json`` (the key's parts).
Entries are written under a temporary name, batch by batch (never the whole array in RAM), and
renamed into place when complete: a folder named by a key is always a whole entry. Reading
checks that ``meta.json`` holds the same parts, so an entry is never reused for other inputs.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from transferkit.errors import ConfigError

FORMAT = 1


def key_of(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, shapes, dtypes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _no_space(root: Path, needed: int) -> ConfigError:
    return ConfigError(
        f"--cache-dir {root} has no room for a {needed / 2**30:.2f} GB feature cache entry "
        f"({shutil.disk_usage(root).free / 2**30:.2f} GB free). Free some space, choose another folder, "
        "or leave --cache-dir out (the cache then stays in memory, up to --cache-max-gb)."
    )


class EntryWriter:
    """Appends batches to a ``.npy`` file under a temporary folder; :meth:`commit` renames it into place."""

    def __init__(self, store: FeatureStore, parts: dict[str, Any], rows: int) -> None:
        self.store, self.parts, self.rows = store, parts, rows
        self.tmp = store.root / f".tmp-{key_of(parts)}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp.mkdir()
        self.handle = None
        self.written = 0
        self.labels: list[Tensor] = []

    def add(self, outputs: Tensor, labels: Tensor) -> None:
        array = outputs.float().contiguous().numpy()
        try:
            if self.handle is None:
                self._open(array.shape[1:])
            self.handle.write(array.tobytes())
        except OSError as exc:
            self.abort()
            if exc.errno == errno.ENOSPC:
                raise _no_space(self.store.root, self.rows * array[0].nbytes) from None
            raise ConfigError(f"Could not write the feature cache in {self.store.root}: {exc}.") from None
        self.written += len(array)
        self.labels.append(labels.cpu().long())

    def _open(self, row_shape: tuple[int, ...]) -> None:
        needed = self.rows * int(np.prod(row_shape)) * 4
        if shutil.disk_usage(self.store.root).free < needed:
            raise OSError(errno.ENOSPC, "no space")
        self.handle = open(self.tmp / "features.npy", "wb")  # noqa: SIM115 (closed by commit/abort)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False}
        np.lib.format.write_array_header_1_0(self.handle, {**header, "shape": (self.rows, *row_shape)})

    def commit(self) -> Path:
        if self.written != self.rows or self.handle is None:
            self.abort()
            raise RuntimeError(f"feature cache entry got {self.written} of {self.rows} rows")
        try:
            self.handle.close()
            np.save(self.tmp / "labels.npy", torch.cat(self.labels).numpy())
            (self.tmp / "meta.json").write_text(json.dumps(self.parts, indent=1, sort_keys=True))
            os.replace(self.tmp, self.store.path(self.parts))
        except OSError as exc:
            self.abort()
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):  # another process wrote the same entry first
                return self.store.path(self.parts)
            raise ConfigError(f"Could not write the feature cache in {self.store.root}: {exc}.") from None
        return self.store.path(self.parts)

    def abort(self) -> None:
        if self.handle is not None:
            self.handle.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class FeatureStore:
    """A folder of feature cache entries (see the module docstring).

    Raises:
        ConfigError: when ``root`` cannot be created or written to.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"--cache-dir {self.root} is not a folder transferkit can write to ({exc.strerror or exc}). "
                "Choose a writable folder, or leave --cache-dir out to keep the cache in memory."
            ) from None

    def path(self, parts: dict[str, Any]) -> Path:
        return self.root / key_of(parts)

    def load(self, parts: dict[str, Any], memory_mapped: bool) -> tuple[Tensor, Tensor] | None:
        """The entry's (features, labels), memory-mapped or read into RAM; ``None`` when there is none."""
        entry = self.path(parts)
        if not entry.is_dir():
            return None
        try:
            stored = json.loads((entry / "meta.json").read_text())
            features = np.load(entry / "features.npy", mmap_mode="c" if memory_mapped else None)
            labels = np.load(entry / "labels.npy")
        except (OSError, ValueError) as exc:
            warnings.warn(f"Feature cache entry {entry} is unreadable ({exc}); recomputing it.", stacklevel=2)
            shutil.rmtree(entry, ignore_errors=True)
            return None
        if stored != parts or len(features) != len(labels) or len(labels) != parts.get("rows"):
            warnings.warn(f"Feature cache entry {entry} was made for other inputs; recomputing it.", stacklevel=2)
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return torch.from_numpy(features), torch.from_numpy(labels)

    def writer(self, parts: dict[str, Any], rows: int) -> EntryWriter:
        return EntryWriter(self, parts, rows)

    def save(self, parts: dict[str, Any], features: Tensor, labels: Tensor) -> Path:
        writer = self.writer(parts, len(features))
        writer.add(features, labels)
        return writer.commit()
