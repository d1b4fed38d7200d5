"""Atomic checkpoint files, loaded with ``weights_only=True`` (no pickled code ever runs)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from transferkit.errors import ConfigError, TransferkitError


def atomic_save(obj: Any, path: str | Path) -> None:
    """Write ``obj`` with ``torch.save`` to a temporary file in the same folder, fsync, then rename.

    A run killed mid-write leaves the previous file intact, never a truncated one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise TransferkitError(
            f"Cannot write checkpoint to {path.parent}: {exc.strerror}. Choose a writable --out."
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        hint = " The disk is full: free space or choose another --out." if exc.errno == errno.ENOSPC else ""
        raise TransferkitError(f"Writing checkpoint {path} failed: {exc.strerror}.{hint}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's contents as plain tensors and containers."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Checkpoint {str(path)!r} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"Cannot load checkpoint {str(path)!r} safely ({type(exc).__name__}: {exc}). transferkit never "
            "unpickles code; the file may be corrupt or not made by transferkit."
        ) from None
