"""``transferkit evaluate MODEL DATA``: metrics of a saved model on labelled images it never saw."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def evaluate(
    model: Path = typer.Argument(..., help="A run's best.pt (any strategy, auto's ensembles included)."),
    data: Path = typer.Argument(..., help="Folder with a test/ (or --split) folder, or a folder of class folders."),
    split: str = typer.Option("test", help="Which sub-folder to score when DATA has train/val/test."),
    tta: Optional[str] = typer.Option(None, help="Test-time views: none, flip, dihedral (default: the model's)."),
    batch_size: int = typer.Option(64),
    out: Optional[Path] = typer.Option(None, help="Also write the metrics to this JSON file."),
) -> None:
    """Accuracy, macro precision/recall/F1 and per-class F1 of MODEL on labelled images."""
    import json

    from transferkit.api import evaluate as run
    from transferkit.data import ImageFileDataset, eval_transform, verify_images
    from transferkit.data.folders import scan_class_folders
    from transferkit.engine.config import TrainConfig
    from transferkit.engine.model import load_model

    net = load_model(model)
    folder = data / split if (data / split).is_dir() else data
    _, samples = scan_class_folders(folder, net.classes)
    transform = eval_transform(net.data_config)
    dataset = ImageFileDataset(verify_images(samples), transform)
    metrics = run(net, dataset, TrainConfig(batch_size=batch_size, progress=False), tta=tta)
    typer.echo(
        f"{len(dataset)} images of {folder}: accuracy {metrics.accuracy:.4f}, macro precision {metrics.precision:.4f}, "
        f"recall {metrics.recall:.4f}, F1 {metrics.f1:.4f}"
    )
    for name, f1 in zip(net.classes, metrics.per_class_f1):
        typer.echo(f"  {name:24s} F1 {f1:.4f}")
    if out is not None:
        out.write_text(json.dumps({"images": len(dataset), "folder": str(folder), **vars(metrics)}, indent=2))
