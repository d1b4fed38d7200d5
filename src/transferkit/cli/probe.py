"""``transferkit probe DATA``: per-layer linear-probe accuracy of a pretrained backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def probe(
    data: Path = typer.Argument(..., help="Folder of class sub-folders (or train/ val/), or a CSV."),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    image_size: Optional[int] = typer.Option(None),
    max_images: int = typer.Option(1000, help="At most this many training images (the first ones)."),
    out: Optional[Path] = typer.Option(None, help="Save the curve as a PNG here."),
) -> None:
    """How linearly separable the classes are after each layer group (shallow → deep)."""
    from torch.utils.data import Subset

    from transferkit.api import load_data
    from transferkit.backbones import create_backbone
    from transferkit.interpret import probe_layers

    bb = create_backbone(backbone, weights=weights)
    loaded = load_data(data, bb.data_config, preset="none", image_size=image_size)
    dataset = loaded.train_eval
    if len(dataset) > max_images:
        dataset = Subset(dataset, range(max_images))
    curve = probe_layers(bb, dataset)
    for name, accuracy in curve:
        typer.echo(f"{name:40s} {accuracy:.4f} {'#' * int(40 * accuracy)}")
    best = max(curve, key=lambda c: c[1])
    typer.echo(f"best layer: {best[0]} ({best[1]:.4f}); the last: {curve[-1][0]} ({curve[-1][1]:.4f})")
    if out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.plot(range(len(curve)), [a for _, a in curve], marker="o")
        ax.set_xticks(range(len(curve)), [n for n, _ in curve], rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("linear-probe accuracy")
        fig.tight_layout()
        fig.savefig(out, dpi=120)
        plt.close(fig)
        typer.echo(f"plot: {out}")
