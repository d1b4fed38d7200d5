"""Progress bars for batches: shown on a terminal or in a notebook, left out of redirected logs.

``tqdm``'s ``disable=None`` turns a bar off when its stream is not a terminal, so ``fit ... > run.log``
keeps one line per epoch instead of hundreds of carriage-return frames; ``tqdm.auto`` still draws
its widget in Jupyter (the notebook bar treats ``None`` as "on").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def batch_bar(batches: Iterable[T], desc: str) -> Iterable[T]:
    """``batches`` wrapped in a transient bar named ``desc`` (nothing drawn where stderr is not a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(batches, desc=desc, leave=False, unit="batch", disable=None)
