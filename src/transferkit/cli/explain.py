"""``transferkit explain MODEL IMAGES…``: Grad-CAM overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


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
    from transferkit.data.transforms import build_transforms, eval_transform
    from transferkit.engine.model import load_model
    from transferkit.errors import BadImageError, ConfigError
    from transferkit.inference import list_images
    from transferkit.interpret import grad_cam, overlay

    net = load_model(model)
    dc = net.data_config
    transform = eval_transform(dc)
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
