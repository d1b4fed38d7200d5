"""The class × attribute table a user gives for attribute-based zero-shot learning."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferkit.errors import DataError


@dataclass(frozen=True)
class AttributeTable:
    """``values[i, m]``: attribute ``m`` of class ``classes[i]`` (binary or continuous)."""

    classes: list[str]
    attributes: list[str]
    values: np.ndarray

    def rows(self, classes: list[str]) -> np.ndarray:
        missing = [c for c in classes if c not in self.classes]
        if missing:
            raise DataError(f"Classes {missing} have no row in the attribute table (it has {self.classes}).")
        return self.values[[self.classes.index(c) for c in classes]]


def read_attribute_table(path: str | Path) -> AttributeTable:
    """CSV: header ``class,attr1,attr2,...``, one row per class, numeric values."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise DataError(f"Cannot read attribute table {path}: {exc}.") from None
    if len(rows) < 3 or len(rows[0]) < 2:
        raise DataError(f"{path}: expected a header 'class,attr1,...' and one row per class (at least 2).")
    header, body = rows[0], [r for r in rows[1:] if r]
    try:
        values = np.array([[float(v) for v in r[1:]] for r in body])
    except ValueError as exc:
        raise DataError(f"{path}: attribute values must be numbers ({exc}).") from None
    if values.shape[1] != len(header) - 1:
        raise DataError(f"{path}: rows have {values.shape[1]} values but the header names {len(header) - 1}.")
    return AttributeTable([r[0] for r in body], header[1:], values)
