"""``transferkit explain MODEL IMAGES…``: Grad-CAM overlays; ``transferkit cka MODEL DATA``: what
fine-tuning changed, layer by layer, and a t-SNE/UMAP map of the model's features."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from transferkit.cli.main import app


@app.command()
def explain(
    model: Path = typer.Argument(..., help="A trained model (best.pt / model.pt)."),
    images: list[Path] = typer.Argument(..., help="Image files or folders."),
    out: Path = typer.Option(Path("gradcam"), help="Folder for the overlay PNGs."),
    target_class: Optional[str] = typer.Option(None, help="Class to explain (default: the predicted one)."),
    layer: Optional[str] = typer.Option(None, help="Module path for Grad-CAM (default: deepest spatial layer)."),
) -> None:
    """Grad-CAM heatmap over each image, saved as PNG, with the explained class in the file name."""
    from PIL import Image

    from transferkit.data.images import load_image
    from transferkit.data.transforms import build_transforms
    from transferkit.engine.model import load_model
    from transferkit.errors import BadImageError, ConfigError
    from transferkit.inference import list_images
    from transferkit.interpret import grad_cam, overlay

    net = load_model(model)
    dc = net.data_config
    transform = build_transforms("none", dc.input_size, dc.mean, dc.std, train=False, interpolation=dc.interpolation)
    display = build_transforms(
        "none", dc.input_size, (0.0,) * 3, (1.0,) * 3, train=False, interpolation=dc.interpolation
    )
    if target_class is not None and target_class not in net.classes:
        raise ConfigError(f"Unknown class {target_class!r}; the model's classes: {net.classes}.")
    target = None if target_class is None else net.classes.index(target_class)
    out.mkdir(parents=True, exist_ok=True)
    for path in list_images([str(p) for p in images]):
        try:
            image = load_image(path)
        except BadImageError as exc:
            typer.echo(f"skipped: {exc}", err=True)
            continue
        cam, classes = grad_cam(net, transform(image).unsqueeze(0), target, layer)
        name = net.classes[int(classes[0])].replace("/", "-")
        destination = out / f"{path.stem}_{name}.png"
        Image.fromarray(overlay(display(image), cam[0])).save(destination)
        typer.echo(f"{path} → {destination}")


@app.command()
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
    from transferkit.data import ImageFileDataset, build_transforms
    from transferkit.engine.model import load_model
    from transferkit.interpret import cka_by_layer, group_output_layers, plot_embedding

    tuned = load_model(model)
    pretrained = create_backbone(tuned.spec()["backbone"], weights=None if weights.lower() == "none" else weights)
    classes, samples = labelled_images(data)
    samples = samples[:max_images]
    dc = tuned.data_config
    transform = build_transforms("none", dc.input_size, dc.mean, dc.std, train=False, interpolation=dc.interpolation)
    dataset = ImageFileDataset(samples, transform)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    layers = group_output_layers(pretrained)
    for name, value in cka_by_layer(pretrained, tuned.backbone, layers, images).items():
        typer.echo(f"{name:40s} CKA {value:.4f} {'#' * int(40 * value)}")
    if embedding is not None:
        features, labels = features_of_images(tuned.backbone, samples, dc.input_size, 64)
        plot_embedding(features.numpy(), labels.numpy(), classes, embedding)
        typer.echo(f"t-SNE map: {embedding}")
