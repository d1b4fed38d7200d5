"""``transferkit zeroshot DATA --attributes table.csv --unseen a,b``: attribute-based zero-shot."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def zeroshot(
    data: Path = typer.Argument(..., help="Class sub-folders; seen classes train, unseen ones are only evaluated."),
    attributes: Optional[Path] = typer.Option(None, help="CSV: class,attr1,attr2,... (eszsl, dap)."),
    unseen: str = typer.Option(..., help="Comma-separated classes held out of training."),
    method: str = typer.Option("eszsl,dap", help="Comma-separated: eszsl, dap, clip (needs --clip-weights)."),
    clip_weights: Optional[Path] = typer.Option(None, help="Local open_clip weights file for method clip."),
    clip_arch: str = typer.Option("ViT-B-32", help="open_clip architecture of --clip-weights."),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    image_size: Optional[int] = typer.Option(None),
    batch_size: int = typer.Option(64),
) -> None:
    """Train on seen classes' images + attributes; report accuracy on images of unseen classes."""
    import numpy as np

    from transferkit.backbones import create_backbone
    from transferkit.cli._common import features_of_images, labelled_images
    from transferkit.errors import ConfigError
    from transferkit.zeroshot import read_attribute_table, zeroshot_methods

    classes, samples = labelled_images(data)
    held_out = [c.strip() for c in unseen.split(",") if c.strip()]
    unknown = sorted(set(held_out) - set(classes))
    if unknown or len(held_out) < 2:
        raise ConfigError(f"--unseen needs at least 2 classes of {classes}; unknown: {unknown}.")
    seen = [c for c in classes if c not in held_out]
    names = np.array([classes[label] for _, label in samples])
    test = ~np.isin(names, seen)
    methods = [m.strip() for m in method.split(",") if m.strip()]

    def report(name: str, predicted: np.ndarray) -> None:
        accuracy = float((predicted == names[test]).mean())
        typer.echo(
            f"{name}: {accuracy:.4f} accuracy on {int(test.sum())} images of unseen classes {held_out} "
            f"(chance {1 / len(held_out):.4f})"
        )

    if "clip" in methods:
        from transferkit.zeroshot import ClipZeroShot

        clf = ClipZeroShot(held_out, arch=clip_arch, weights=clip_weights)
        indices = clf.predict_files([p for (p, _), keep in zip(samples, test) if keep]).numpy()
        report("clip", np.array(held_out)[indices])
    attribute_methods = [m for m in methods if m != "clip"]
    if not attribute_methods:
        return
    if attributes is None:
        raise ConfigError(f"Methods {attribute_methods} need a class × attribute table: --attributes table.csv.")
    table = read_attribute_table(attributes)
    bb = create_backbone(backbone, weights=weights)
    features, _ = features_of_images(bb, samples, image_size, batch_size)
    x = features.numpy()
    seen_index = {c: i for i, c in enumerate(seen)}
    y = np.array([seen_index[n] for n in names[~test]])
    for name in attribute_methods:
        model = zeroshot_methods.get(name)().fit(x[~test], y, table.rows(seen))
        report(name, np.array(held_out)[model.predict(x[test], table.rows(held_out))])
