"""What a run leaves on disk: config, metrics.csv, learning curves, confusion matrix."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from transferkit.engine.loggers import flatten
from transferkit.errors import TransferkitError


def prepare(out: str | Path) -> Path:
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise TransferkitError(
            f"Run folder {str(path)!r} is not writable ({exc.strerror}). Choose another --out."
        ) from None
    return path


# options that change no weight and no selection (workers: tested): free to differ on --resume. Not the
# cache's options: whether the frozen outputs are cached changes what the head trains on
RESUME_NEUTRAL = ("progress", "num_workers", "loggers", "top_k")


def run_facts(config: Any, strategy: Any, spec: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``config.yaml`` records and a ``--resume`` must match: the options, the strategy with its settings
    (``partial``'s groups, a schedule's epochs…), the model's spec and the caller's facts (``extra``: the data)."""
    settings = {k: v for k, v in vars(strategy).items() if not k.startswith("_")}
    return {"train": config.to_dict(), "strategy": {"name": strategy.name, **settings}, "model": spec, **(extra or {})}


def plain(facts: dict[str, Any]) -> dict[str, Any]:
    """``facts`` as JSON would store them (tuples → lists, other objects → str): comparable after a reload."""
    return json.loads(json.dumps(facts, default=str))


def changed_facts(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"key: saved → current"`` for each fact of a run that differs (``train.<RESUME_NEUTRAL>`` aside)."""
    old, new = flatten(plain(saved)), flatten(plain(current))
    neutral = {f"train.{key}" for key in RESUME_NEUTRAL}
    keys = [k for k in dict.fromkeys([*old, *new]) if k not in neutral and old.get(k) != new.get(k)]
    return [f"{k}: {old.get(k, '(absent)')} → {new.get(k, '(absent)')}" for k in keys]


def write_config(path: Path, config: dict[str, Any]) -> None:
    (path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def write_metrics_csv(path: Path, history: Sequence[dict[str, Any]]) -> None:
    if not history:
        return
    fields = list(dict.fromkeys(key for row in history for key in row))  # rows may differ (a solved stage)
    with open(path / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(history)


def write_json(path: Path, name: str, payload: dict[str, Any]) -> None:
    (path / name).write_text(json.dumps(payload, indent=2))


def plot_curves(path: Path, history: Sequence[dict[str, Any]]) -> Path:
    """Loss and accuracy per epoch, train and val, with stage boundaries marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] + 1 for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], "o-", label="val")
    ax_acc.plot(epochs, [r["train_acc"] for r in history], "o-", label="train")
    ax_acc.plot(epochs, [r["val_acc"] for r in history], "o-", label="val")
    for prev, row in zip(history, history[1:]):
        if row["stage"] != prev["stage"]:
            for ax in (ax_loss, ax_acc):
                ax.axvline(row["epoch"] + 0.5, color="grey", ls="--", lw=0.8)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = path / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_confusion(path: Path, confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.asarray(confusion)
    size = max(4.0, 0.5 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > matrix.max() / 2 else "black",
            fontsize=8,
        )
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (val)")
    fig.tight_layout()
    out = path / "confusion.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
