"""One small generic registry: a name → a factory, with helpful errors."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from transferkit.errors import UnknownNameError

T = TypeVar("T")


def suggest(name: str, choices: list[str], n: int = 3) -> list[str]:
    """Close matches of ``name`` among ``choices`` (case-insensitive)."""
    lowered = {c.lower(): c for c in choices}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)]


class Registry(Generic[T]):
    """Maps short names to factories.

    Example:
        >>> heads = Registry("head")
        >>> @heads.register("linear")
        ... class LinearHead: ...
        >>> heads.get("linear").__name__
        'LinearHead'
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise KeyError(f"A {self.kind} named {name!r} is already registered ({self._entries[name]!r}).")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            guesses = suggest(name, self.names())
            hint = f" Did you mean {guesses[0]!r}?" if guesses else ""
            raise UnknownNameError(
                f"No {self.kind} named {name!r}.{hint} Available: {', '.join(self.names())}."
            ) from None

    def create(self, name: str, **options: object) -> object:
        """Call the factory registered as ``name`` with ``options``.

        Options the factory's signature does not accept are a ConfigError naming the valid ones; a
        TypeError raised *inside* the factory is a bug and propagates unchanged.
        """
        import inspect

        from transferkit.errors import ConfigError

        factory = self.get(name)
        try:
            inspect.signature(factory).bind(**options)
        except TypeError as exc:
            accepted = [p for p in inspect.signature(factory).parameters if p not in ("self", "args", "kwargs")]
            raise ConfigError(
                f"Bad options for {self.kind} {name!r}: {exc}. Valid options: {', '.join(accepted) or 'none'}."
            ) from None
        return factory(**options)  # type: ignore[operator]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
