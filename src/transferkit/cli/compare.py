"""``transferkit compare DATA``: feature extraction vs. fine-tuning vs. progressive unfreezing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from transferkit.cli._common import backbone_and_data, train_config


def compare(
    data: Path = typer.Argument(...),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    strategies: str = typer.Option("feature-extraction,fine-tune,progressive", help="Comma-separated."),
    epochs: int = typer.Option(6),
    batch_size: int = typer.Option(32),
    lr: float = typer.Option(1e-3),
    preset: str = typer.Option("light"),
    image_size: Optional[int] = typer.Option(None),
    val_fraction: float = typer.Option(0.2),
    seed: int = typer.Option(0),
    precision: str = typer.Option("auto"),
    out: Path = typer.Option(Path("runs/compare")),
    progress: bool = typer.Option(True),
) -> None:
    """Train several strategies on the same split; print a table and save compare.png."""
    from transferkit.compare import compare_strategies, format_table

    p = dict(locals())
    _, dataset = backbone_and_data(p)
    rows = compare_strategies(
        dataset, backbone, [s.strip() for s in strategies.split(",") if s.strip()], train_config(p), weights, out
    )
    typer.echo("\n" + format_table(rows))
    typer.echo(f"\nplot: {out / 'compare.png'}")
