"""``transferkit continual DATA --tasks 3``: class-incremental learning on pretrained features."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def continual(
    data: Path = typer.Argument(..., help="Class sub-folders (or train/ val/); classes are split into tasks."),
    tasks: int = typer.Option(3, help="Number of tasks (disjoint class groups)."),
    methods: str = typer.Option("fine-tune,ewc,lwf,replay"),
    epochs: int = typer.Option(5, help="Epochs per task."),
    buffer: int = typer.Option(200, help="replay: stored examples."),
    ewc_lambda: float = typer.Option(100.0),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    image_size: Optional[int] = typer.Option(None),
    val_fraction: float = typer.Option(0.3),
    batch_size: int = typer.Option(32),
    seed: int = typer.Option(0),
) -> None:
    """Learn the tasks in sequence; print accuracy matrices, average accuracy and forgetting."""
    from transferkit.api import load_data
    from transferkit.backbones import create_backbone
    from transferkit.continual import class_incremental_tasks, run_continual
    from transferkit.inference import dataset_features

    bb = create_backbone(backbone, weights=weights)
    loaded = load_data(data, bb.data_config, preset="none", image_size=image_size, val_fraction=val_fraction, seed=seed)
    train_x, train_y = dataset_features(bb, loaded.train_eval)
    test_x, test_y = dataset_features(bb, loaded.val)
    sequence = class_incremental_tasks(train_x, train_y, test_x, test_y, tasks, seed)
    options = {"replay": {"capacity": buffer, "seed": seed}, "ewc": {"lam": ewc_lambda}}
    rows = []
    for name in [m.strip() for m in methods.split(",") if m.strip()]:
        result = run_continual(
            sequence,
            name,
            len(loaded.classes),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            method_options=options.get(name),
            log=lambda _: None,
        )
        rows.append(result)
        typer.echo(f"\n{name}: accuracy matrix (row i: after task i; column j: task j)")
        for i, row in enumerate(result.accuracy_matrix):
            typer.echo("  " + " ".join(f"{v:.3f}" if j <= i else "  -  " for j, v in enumerate(row)))
    typer.echo(f"\n{'method':10s} {'avg acc':>8s} {'forgetting':>10s}")
    for r in rows:
        typer.echo(f"{r.method:10s} {r.average_accuracy:8.4f} {r.forgetting:10.4f}")
