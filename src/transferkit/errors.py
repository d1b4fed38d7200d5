"""Exception tree. Every error says what happened, what was received and what to do.

TransferkitError
├── ConfigError          invalid option or combination of options
├── UnknownNameError     a registry or backbone name that does not exist
├── WeightsNotFoundError pretrained weights are not available offline
├── DataError            a dataset layout or file problem
│   └── BadImageError    one image cannot be decoded (corrupt, truncated, too large)
└── TrainingError        training cannot go on (e.g. a non-finite loss)
"""

from __future__ import annotations


class TransferkitError(Exception):
    """Base class of every error raised on purpose by transferkit."""


class ConfigError(TransferkitError, ValueError):
    """An option, or a combination of options, is invalid."""


class UnknownNameError(TransferkitError, KeyError):
    """A name that no registry or model zoo knows."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(TransferkitError, FileNotFoundError):
    """Pretrained weights were asked for but are not available on this machine."""


class DataError(TransferkitError, ValueError):
    """The dataset cannot be used as given."""


class BadImageError(DataError):
    """One image file cannot be decoded."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"Cannot read image {path}: {reason}")
        self.path = path
        self.reason = reason


class TrainingError(TransferkitError, RuntimeError):
    """Training cannot continue."""
