"""``transferkit extract DATA --layer NAME --out features.npy``.

Under ``torchrun --nproc_per_node K -m transferkit extract ...`` each process extracts a shard of
the images; the shards are gathered in order and rank 0 writes one output, atomically (nothing is
written if a rank fails)."""

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
    import numpy as np
    import torch

    from transferkit.backbones import create_backbone
    from transferkit.cli._common import labelled_images
    from transferkit.data import ImageFileDataset, eval_transform
    from transferkit.engine.cache import extract_features
    from transferkit.engine.config import TrainConfig
    from transferkit.engine.distributed import make_fabric

    torch.manual_seed(0)  # --weights none: the same random network in every run and every process
    bb = create_backbone(backbone, weights=weights).eval()
    classes, samples = labelled_images(data)
    fabric = make_fabric(TrainConfig(precision="32-true", progress=False))  # DDP under torchrun
    bb.to(fabric.device)
    transform = eval_transform(bb.data_config, image_size)
    # fp32: features written to disk should not depend on the CPU's bf16 support
    features = extract_features(fabric, bb, ImageFileDataset(samples, transform), batch_size, desc=None, layer=layer)
    features = features[0].numpy()
    if not fabric.is_global_zero:
        return
    labels = np.array([label for _, label in samples])
    if out.suffix == ".parquet":
        _write_parquet(out, features, labels, samples, classes)
    else:
        _atomic(out, lambda tmp: np.save(tmp, features))
        _atomic(out.with_name(out.stem + "_labels.npy"), lambda tmp: np.save(tmp, labels))
        rows = [(str(p), classes[c]) for p, c in samples]
        _atomic(out.with_name(out.stem + "_paths.csv"), lambda tmp: _write_csv(tmp, rows))
    typer.echo(f"{features.shape[0]} × {features.shape[1]} features from {layer or 'the pooled output'} → {out}")


def _atomic(path: Path, write) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it to ``path``."""
    import os

    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_csv(path: Path, rows: list) -> None:
    import csv

    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def _write_parquet(out: Path, features, labels, samples, classes) -> None:
    from transferkit.errors import ConfigError

    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(
            "Writing .parquet needs pyarrow: pip install 'transferkit[parquet]' (or pyarrow), or use .npy."
        ) from None
    columns = {"path": [str(p) for p, _ in samples], "label": [classes[i] for i in labels]}
    columns.update({f"f{i}": features[:, i] for i in range(features.shape[1])})
    _atomic(out, lambda tmp: pq.write_table(pa.table(columns), tmp))
