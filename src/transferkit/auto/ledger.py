"""What ``auto`` decided and finished, written after every step, so a killed run resumes exactly.

``auto_state.json`` in the run folder lists, per recipe, the input size chosen, whether it was
skipped (and why), and, once finished, its time and validation scores. On ``--resume`` the
decisions are replayed instead of re-planned (a recipe keeps its input size even if the
machine is busier now), finished candidates are reloaded from their ``best.pt``, and the one
that was interrupted continues from its own ``last.pt`` (the engine's exact resume).

The same decisions can start a *new* run: ``fit --plan RUN`` (:func:`load_plan`) trains every recipe
at the input size RUN chose and skips what RUN skipped, instead of timing this machine — so runs on
other seeds, splits or machines try the same candidates, which a time budget alone does not promise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transferkit.errors import ConfigError

STATE = "auto_state.json"


class Ledger:
    """Decisions and results of an ``auto`` run, kept in ``folder/auto_state.json`` (nothing without a folder)."""

    def __init__(self, folder: Path | None, resume: bool = False) -> None:
        self.path = folder / STATE if folder is not None else None
        self.entries: dict[str, dict[str, Any]] = {}
        if resume:
            if self.path is None or not self.path.is_file():
                raise ConfigError(
                    f"Nothing to resume: {self.path or 'no run folder'} does not exist. Run without --resume."
                )
            self.entries = json.loads(self.path.read_text())["recipes"]

    def get(self, name: str) -> dict[str, Any] | None:
        return self.entries.get(name)

    def record(self, name: str, **fields: Any) -> None:
        self.entries[name] = {**self.entries.get(name, {}), **fields}
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"recipes": self.entries}, indent=1))
        os.replace(temporary, self.path)  # atomic: a kill leaves the old or the new file, never half of one

    def spent(self) -> float:
        """Seconds already spent by finished recipes (a resumed run counts them against the budget)."""
        return sum(float(e.get("seconds", 0.0)) for e in self.entries.values() if e.get("status") == "ok")


def load_plan(source: str | Path) -> dict[str, dict[str, Any]]:
    """The decisions of an earlier ``auto`` run — recipe name → its entry (status, input size, estimate) —
    from its run folder or its ``auto_state.json``."""
    path = Path(source)
    path = path / STATE if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(
            f"--plan {source}: no {STATE} there. Give the --out folder of an earlier auto run (or its {STATE})."
        )
    try:
        recipes = json.loads(path.read_text())["recipes"]
        sizes = {name: entry.get("size") for name, entry in recipes.items() if entry["status"] != "skipped"}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"--plan {path}: not the {STATE} of an auto run ({type(exc).__name__}: {exc}). "
            "Give the --out folder of an earlier auto run."
        ) from exc
    bad = {name: size for name, size in sizes.items() if size is not None and not (isinstance(size, int) and size > 0)}
    if bad:
        raise ConfigError(f"--plan {path}: input sizes must be positive integers; got {bad}.")
    return recipes
