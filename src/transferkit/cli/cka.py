"""``transferkit cka MODEL DATA``: what fine-tuning changed, layer by layer, and a t-SNE/UMAP map of
the model's features."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def cka(
    model: Path = typer.Argument(..., help="A fine-tuned model (best.pt)."),
    data: Path = typer.Argument(..., help="Images to compare the representations on (class sub-folders)."),
    weights: str = typer.Option("imagenet", help="The pretrained starting point to compare with."),
    max_images: int = typer.Option(500),
    embedding: Optional[Path] = typer.Option(None, help="Also save a t-SNE map of the model's features here."),
) -> None:
    """Linear CKA between the pretrained and the fine-tuned backbone after each layer group."""
    import torch

    from transferkit.backbones import create_backbone
    from transferkit.cli._common import features_of_images, labelled_images
    from transferkit.data import ImageFileDataset, eval_transform
    from transferkit.engine.model import load_model
    from transferkit.interpret import cka_by_layer, group_output_layers, plot_embedding

    tuned = load_model(model)
    pretrained = create_backbone(tuned.spec()["backbone"], weights=weights)
    classes, samples = labelled_images(data)
    samples = samples[:max_images]
    dc = tuned.data_config
    transform = eval_transform(dc)
    dataset = ImageFileDataset(samples, transform)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    layers = group_output_layers(pretrained)
    for name, value in cka_by_layer(pretrained, tuned.backbone, layers, images).items():
        typer.echo(f"{name:40s} CKA {value:.4f} {'#' * int(40 * value)}")
    if embedding is not None:
        features, labels = features_of_images(tuned.backbone, samples, dc.input_size, 64)
        plot_embedding(features.numpy(), labels.numpy(), classes, embedding)
        typer.echo(f"t-SNE map: {embedding}")
