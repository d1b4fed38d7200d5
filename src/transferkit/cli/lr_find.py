"""``transferkit lr-find DATA``: learning-rate range test with a suggestion and a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from transferkit.cli._common import backbone_and_data, train_config


def lr_find(
    data: Path = typer.Argument(...),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    strategy: str = typer.Option("fine-tune", help="The test runs in the strategy's first stage."),
    batch_size: int = typer.Option(32),
    steps: int = typer.Option(100, help="Mini-batches (learning rates) to try."),
    start_lr: float = typer.Option(1e-7),
    end_lr: float = typer.Option(1.0),
    preset: str = typer.Option("light"),
    image_size: Optional[int] = typer.Option(None),
    val_fraction: float = typer.Option(0.2),
    seed: int = typer.Option(0),
    precision: str = typer.Option("auto"),
    out: Path = typer.Option(Path("lr_find.png"), help="Plot to write."),
) -> None:
    """Suggest a learning rate: exponential ramp, steepest descent of the smoothed loss."""
    from transferkit.engine.lr_finder import lr_range_test
    from transferkit.engine.model import build_model
    from transferkit.strategies import create_strategy

    p = dict(locals())
    bb, dataset = backbone_and_data(p)
    model = build_model(bb, len(dataset.classes), dataset.classes, data_config=dataset.data_config)
    result = lr_range_test(
        model,
        create_strategy(strategy),
        dataset.train,
        train_config(p),
        start_lr,
        end_lr,
        steps,
        cache_from=dataset.train_eval,
    )
    result.plot(out)
    typer.echo(f"suggested learning rate: {result.suggestion:.2e} (plot: {out})")
