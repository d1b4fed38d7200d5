"""``transferkit extract DATA --layer NAME --out features.npy``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


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

    from transferkit.backbones import create_backbone
    from transferkit.cli._common import features_of_images, labelled_images
    from transferkit.errors import ConfigError

    bb = create_backbone(backbone, weights=weights).eval()
    classes, samples = labelled_images(data)
    # fp32: features written to disk should not depend on the CPU's bf16 support
    features = features_of_images(bb, samples, image_size, batch_size, layer, precision="32-true")[0].numpy()
    labels = np.array([label for _, label in samples])
    if out.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError(
                "Writing .parquet needs pyarrow: pip install 'transferkit[parquet]' (or pyarrow), or use .npy."
            ) from None
        columns = {"path": [str(p) for p, _ in samples], "label": [classes[i] for i in labels]}
        columns.update({f"f{i}": features[:, i] for i in range(features.shape[1])})
        pq.write_table(pa.table(columns), out)
    else:
        np.save(out, features)
        np.save(out.with_name(out.stem + "_labels.npy"), labels)
        with open(out.with_name(out.stem + "_paths.csv"), "w", newline="") as handle:
            csv.writer(handle).writerows([(str(p), classes[c]) for p, c in samples])
    typer.echo(f"{features.shape[0]} × {features.shape[1]} features from {layer or 'the pooled output'} → {out}")
