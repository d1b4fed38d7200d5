"""``transferkit advise DATA``: recommend a strategy from measurements on the data."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def advise(
    data: Path = typer.Argument(..., help="Folder of class sub-folders (or train/ val/), or a CSV."),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    budget_epochs: int = typer.Option(0, help="Also train transfer vs. from scratch for this many epochs."),
    image_size: Optional[int] = typer.Option(None),
    batch_size: int = typer.Option(32),
    seed: int = typer.Option(0),
) -> None:
    """Measure data size and closeness to pretraining; print the recommended strategy and why."""
    import torch

    from transferkit.advise import advise as run_advise
    from transferkit.api import load_data
    from transferkit.backbones import create_backbone
    from transferkit.engine.config import TrainConfig

    pretrained = create_backbone(backbone, weights=weights)
    torch.manual_seed(seed)  # the random-init reference is the same network on every run
    scratch = create_backbone(backbone, weights=None)
    data_ = load_data(data, pretrained.data_config, preset="light", image_size=image_size, seed=seed)
    advice = run_advise(
        data_, pretrained, scratch, budget_epochs, TrainConfig(batch_size=batch_size, seed=seed), log=typer.echo
    )
    typer.echo(f"\nrecommended strategy: {advice.strategy}")
    typer.echo(f"recommended input size: {advice.input_size} px (--image-size {advice.input_size})")
    for reason in advice.reasons:
        typer.echo(f"  - {reason}")
    if advice.negative_transfer:
        typer.echo("warning: negative transfer suspected.")
