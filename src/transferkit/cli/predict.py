"""``transferkit predict MODEL IMAGES… --out predictions.csv``.

Under ``torchrun --nproc_per_node K -m transferkit predict ...`` each process predicts a share of the
files; rank 0 writes the one CSV, in the files' order, atomically (nothing if a rank fails)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def predict(
    model: Path = typer.Argument(..., help="A run's best.pt or last.pt."),
    images: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    out: Path = typer.Option(Path("predictions.csv"), help="CSV to write."),
    top_k: int = typer.Option(3, help="Classes per image in the CSV."),
    batch_size: int = typer.Option(32),
    tta: Optional[str] = typer.Option(None, help="Test-time views: none, flip, dihedral (default: the model's)."),
) -> None:
    """Predict the class of every image; unreadable files are listed with their error."""
    from transferkit.engine.config import TrainConfig
    from transferkit.engine.distributed import make_fabric, sharded
    from transferkit.engine.model import load_model
    from transferkit.inference import list_images, write_predictions_csv
    from transferkit.inference import predict as run

    net = load_model(model)
    if tta is not None:
        net.tta = tta
    files = list_images(images)
    fabric = make_fabric(TrainConfig(precision="32-true", progress=False))  # DDP under torchrun
    net.to(fabric.device)
    predictions = sharded(fabric, files, lambda share: run(net, share, top_k, batch_size))
    if not fabric.is_global_zero:
        return
    write_predictions_csv(predictions, out, min(top_k, len(net.classes)))
    failed = sum(1 for p in predictions if p.error)
    typer.echo(f"{len(predictions) - failed} images predicted{f', {failed} unreadable' if failed else ''} → {out}")
