"""``transferkit extract DATA --layer NAME --out features.npy``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from transferkit.cli.main import app


@app.command()
def extract(
    data: Path = typer.Argument(..., help="Folder of class sub-folders (or train/ val/), or a CSV."),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    layer: Optional[str] = typer.Option(None, help="Module path, e.g. model.layer3 (default: pooled features)."),
    out: Path = typer.Option(Path("features.npy"), help=".npy (labels and paths beside it) or .parquet."),
    image_size: Optional[int] = typer.Option(None),
    batch_size: int = typer.Option(64),
) -> None:
    """Save one feature vector per image, with labels and paths."""
    import csv

    import numpy as np
    import torch

    from transferkit.backbones import create_backbone
    from transferkit.data import ImageFileDataset, build_transforms, find_splits, verify_images
    from transferkit.errors import ConfigError
    from transferkit.inference import features_at

    bb = create_backbone(backbone, weights=weights).eval()
    splits = find_splits(data, val_fraction=0.5)
    samples = verify_images(sorted(splits.train + splits.val + splits.test))
    dc = bb.data_config
    size = image_size or dc.input_size
    dataset = ImageFileDataset(samples, build_transforms("none", size, dc.mean, dc.std, train=False))
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(dataset), batch_size):
            batch = torch.stack([dataset[i][0] for i in range(start, min(start + batch_size, len(dataset)))])
            chunks.append(features_at(bb, batch, layer).float())
    features = torch.cat(chunks).numpy()
    labels = np.array([label for _, label in samples])
    if out.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(
                "Writing .parquet needs pyarrow: pip install 'transferkit[parquet]' (or pyarrow), or use .npy."
            ) from None
        columns = {"path": [str(p) for p, _ in samples], "label": [splits.classes[i] for i in labels]}
        columns.update({f"f{i}": features[:, i] for i in range(features.shape[1])})
        pq.write_table(pa.table(columns), out)
    else:
        np.save(out, features)
        np.save(out.with_name(out.stem + "_labels.npy"), labels)
        with open(out.with_name(out.stem + "_paths.csv"), "w", newline="") as handle:
            csv.writer(handle).writerows([(str(p), splits.classes[c]) for p, c in samples])
    typer.echo(f"{features.shape[0]} × {features.shape[1]} features from {layer or 'the pooled output'} → {out}")
