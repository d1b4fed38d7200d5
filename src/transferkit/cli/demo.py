"""``transferkit demo``: ``fit`` with ``auto`` on Fashion-MNIST, beside the classical baselines."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo-out")),
    per_class: int = typer.Option(100, help="Labelled training images per class."),
    time_budget: str = typer.Option("10m", help="auto's budget for all its recipes."),
    seed: int = typer.Option(0, help="Which labelled subset."),
    progress: bool = typer.Option(True),
) -> None:
    """Fit EfficientNet-Lite0 (ImageNet) with auto on a small labelled subset; every candidate scored on test."""
    from transferkit.demo import run_demo

    run_demo(out, per_class=per_class, time_budget=time_budget, seed=seed, progress=progress)
