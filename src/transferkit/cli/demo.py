"""``transferkit demo``: transfer vs. from-scratch on Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

import typer

from transferkit.cli.main import app


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out")),
    per_class: int = typer.Option(100, help="Labelled training images per class."),
    epochs: int = typer.Option(8),
    image_size: int = typer.Option(96),
    progress: bool = typer.Option(True),
) -> None:
    """Train EfficientNet-Lite0 (ImageNet) on a small labelled subset and compare with training from scratch."""
    from transferkit.demo import run_demo

    run_demo(out, per_class=per_class, epochs=epochs, image_size=image_size, progress=progress)
