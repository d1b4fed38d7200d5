"""``transferkit zeroshot DATA --attributes table.csv --unseen a,b``: attribute-based zero-shot."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from transferkit.cli.main import app


@app.command()
def zeroshot(
    data: Path = typer.Argument(..., help="Class sub-folders; seen classes train, unseen ones are only evaluated."),
    attributes: Path = typer.Option(..., help="CSV: class,attr1,attr2,... one row per class."),
    unseen: str = typer.Option(..., help="Comma-separated classes held out of training."),
    method: str = typer.Option("eszsl,dap", help="Comma-separated: eszsl, dap."),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    image_size: Optional[int] = typer.Option(None),
    batch_size: int = typer.Option(64),
) -> None:
    """Train on seen classes' images + attributes; report accuracy on images of unseen classes."""
    import numpy as np

    from transferkit.backbones import create_backbone
    from transferkit.data import ImageFileDataset, build_transforms, find_splits, verify_images
    from transferkit.errors import ConfigError
    from transferkit.inference import dataset_features
    from transferkit.zeroshot import read_attribute_table, zeroshot_methods

    table = read_attribute_table(attributes)
    splits = find_splits(data, val_fraction=0.5)
    held_out = [c.strip() for c in unseen.split(",") if c.strip()]
    unknown = sorted(set(held_out) - set(splits.classes))
    if unknown or len(held_out) < 2:
        raise ConfigError(f"--unseen needs at least 2 classes of {splits.classes}; unknown: {unknown}.")
    seen = [c for c in splits.classes if c not in held_out]
    bb = create_backbone(backbone, weights=None if weights.lower() == "none" else weights)
    dc = bb.data_config
    samples = verify_images(sorted(splits.train + splits.val + splits.test))
    transform = build_transforms("none", image_size or dc.input_size, dc.mean, dc.std, train=False)
    features, labels = dataset_features(bb, ImageFileDataset(samples, transform), batch_size)
    x, names = features.numpy(), np.array([splits.classes[i] for i in labels.numpy()])
    train = np.isin(names, seen)
    seen_index = {c: i for i, c in enumerate(seen)}
    y = np.array([seen_index[n] for n in names[train]])
    for name in [m.strip() for m in method.split(",") if m.strip()]:
        model = zeroshot_methods.get(name)().fit(x[train], y, table.rows(seen))
        predicted = np.array(held_out)[model.predict(x[~train], table.rows(held_out))]
        accuracy = float((predicted == names[~train]).mean())
        typer.echo(
            f"{name}: {accuracy:.4f} accuracy on {int((~train).sum())} images of unseen classes {held_out} "
            f"(chance {1 / len(held_out):.4f})"
        )
