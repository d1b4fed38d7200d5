"""``transferkit rank DATA --backbones a,b,c``: rank backbones by transferability, without training."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def rank(
    data: Path = typer.Argument(..., help="Folder of class sub-folders (or train/ val/), or a CSV."),
    backbones: str = typer.Option(
        "offline",
        help="Comma-separated backbone names, or offline: every backbone whose ImageNet weights are on this "
        "machine (transferkit info).",
    ),
    weights: str = typer.Option("imagenet", help="imagenet, a weights file, or none."),
    scores: str = typer.Option("logme,leep,nce,hscore", help="Comma-separated scores."),
    scratch: bool = typer.Option(False, help="Also score each backbone randomly initialised."),
    source_labels: str = typer.Option(
        "auto", help="LEEP/NCE source posteriors: head (pretrained classifier), gmm (N-LEEP), auto."
    ),
    image_size: Optional[int] = typer.Option(None),
    max_images: int = typer.Option(2000, help="Stratified subsample size."),
    batch_size: int = typer.Option(64),
    seed: int = typer.Option(0),
) -> None:
    """Score each backbone's frozen features on DATA (LogME, LEEP, NCE, H-score; higher is better)."""
    from transferkit.api import training_images
    from transferkit.cli._common import backbone_names
    from transferkit.errors import ConfigError
    from transferkit.transferability.rank import format_ranking, rank_backbones

    names = backbone_names(backbones)
    rows = rank_backbones(
        training_images(data, seed),
        names,
        weights=weights,
        score_names=[s.strip() for s in scores.split(",") if s.strip()],
        image_size=image_size,
        batch_size=batch_size,
        max_images=max_images,
        seed=seed,
        include_scratch=scratch,
        log=lambda line: typer.echo(line, err=True),
        source_labels=source_labels,
    )
    if not rows:
        raise ConfigError(f"No backbone could be scored among {names}; see the messages above.")
    typer.echo(format_ranking(rows))
    pretrained = {r.backbone: r for r in rows if r.weights != "random init"}
    for r in rows:
        if r.weights == "random init" and r.backbone in pretrained and "logme" in r.scores:
            if r.scores["logme"] >= pretrained[r.backbone].scores["logme"]:
                typer.echo(
                    f"warning: {r.backbone}'s pretrained features score no better than its random initialisation "
                    "(LogME): likely negative transfer; try training from scratch or another backbone."
                )
