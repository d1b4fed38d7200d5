"""``transferkit multisource DATA --backbones a,b,c``: combine several pretrained sources."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def multisource(
    data: Path = typer.Argument(..., help="Folder of class sub-folders (or train/ val/), or a CSV."),
    backbones: str = typer.Option(
        "offline",
        help="Comma-separated backbones (the sources), or offline: every backbone whose ImageNet weights are on "
        "this machine (transferkit info).",
    ),
    weights: str = typer.Option("imagenet"),
    mode: str = typer.Option("selective", help="concat, weighted (by LogME) or selective (drops unhelpful sources)."),
    image_size: Optional[int] = typer.Option(None),
    batch_size: int = typer.Option(64),
    seed: int = typer.Option(0),
) -> None:
    """Linear-probe accuracy of each source alone and of their combination."""
    from transferkit.api import load_data, rebind
    from transferkit.backbones import create_backbone
    from transferkit.cli._common import backbone_names
    from transferkit.inference import dataset_features
    from transferkit.transferability.multisource import combine_sources

    sources, labels, loaded = {}, None, None
    for name in backbone_names(backbones):
        bb = create_backbone(name, weights=weights)
        if loaded is None:  # images found and checked once
            loaded = load_data(data, bb.data_config, preset="none", image_size=image_size, seed=seed)
        features, labels = dataset_features(bb, rebind(loaded, bb.data_config, image_size).train_eval, batch_size)
        key = name if name not in sources else f"{name}#{len(sources)}"
        sources[key] = features.numpy()
    _, result = combine_sources(sources, labels.numpy(), mode, log=typer.echo)
    typer.echo(f"\n{mode}: sources {result.selected}, cross-validated accuracy {result.cv_accuracy:.4f}")
    typer.echo("weights: " + ", ".join(f"{k} {v:.3f}" for k, v in result.weights.items()))
    if result.dropped:
        typer.echo(f"dropped (no gain or negative transfer): {result.dropped}")
