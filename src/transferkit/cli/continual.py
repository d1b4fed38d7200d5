"""``transferkit continual DATA --tasks 3``: class-incremental learning on pretrained features."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

DEFAULT_METHODS = "fine-tune,ewc,lwf,replay,progressive"


def continual(
    data: Path = typer.Argument(..., help="Class sub-folders (or train/ val/); classes are split into tasks."),
    tasks: Optional[int] = typer.Option(
        None, help="Number of tasks (disjoint groups of 2 classes or more; default: 3, or fewer on few classes)."
    ),
    methods: str = typer.Option(
        DEFAULT_METHODS,
        help="Continual methods to compare; progressive grows one column of the backbone's top layer groups per task.",
    ),
    column_groups: int = typer.Option(2, help="progressive: layer groups of the backbone in each column."),
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
    from transferkit.continual.progressive import column_segments
    from transferkit.continual.runner import check_task_count
    from transferkit.errors import ConfigError
    from transferkit.inference import dataset_features

    bb = create_backbone(backbone, weights=weights)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    segments = None
    if "progressive" in names:  # a backbone that cannot take adapters fails before any image is read...
        try:
            segments = column_segments(bb, column_groups)
        except ConfigError as exc:
            if methods != DEFAULT_METHODS:
                raise
            typer.echo(f"progressive skipped: {exc}")  # ...or, when only the default list named it, is skipped
            names.remove("progressive")
    loaded = load_data(data, bb.data_config, preset="none", image_size=image_size, val_fraction=val_fraction, seed=seed)
    tasks = tasks or max(2, min(3, len(loaded.classes) // 2))
    check_task_count(tasks, len(loaded.classes))  # before any feature is computed
    train_x, train_y = dataset_features(bb, loaded.train_eval)
    test_x, test_y = dataset_features(bb, loaded.val)
    sequence = class_incremental_tasks(train_x, train_y, test_x, test_y, tasks, seed)
    options = {"replay": {"capacity": buffer, "seed": seed}, "ewc": {"lam": ewc_lambda}}
    rows = []
    for name in names:
        if name == "progressive":
            rows += _progressive(bb, loaded, segments, column_groups, tasks, epochs, batch_size, seed)
            continue
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
    for result in rows:
        typer.echo(f"\n{result.method}: accuracy matrix (row i: after task i; column j: task j)")
        for i, row in enumerate(result.accuracy_matrix):
            typer.echo("  " + " ".join(f"{v:.3f}" if j <= i else "  -  " for j, v in enumerate(row)))
    typer.echo(f"\n{'method':26s} {'avg acc':>8s} {'forgetting':>10s} {'seconds':>8s}")
    for r in rows:
        typer.echo(f"{r.method:26s} {r.average_accuracy:8.4f} {r.forgetting:10.4f} {r.seconds:8.1f}")
    if "progressive" in names:
        typer.echo(
            "Note: progressive (task-aware) is told which task an image belongs to and uses that task's column; "
            "the other rows, and progressive (no task id), are not (class-incremental: all seen classes compete)."
        )


def _progressive(bb, loaded, segments, groups: int, tasks: int, epochs: int, batch_size: int, seed: int) -> list:
    """Both progressive rows: the tasks' inputs are the frozen bottom's feature maps."""
    from transferkit.continual import class_incremental_tasks
    from transferkit.continual.progressive import run_progressive, segment_widths
    from transferkit.inference import dataset_features

    cut = len(bb.layer_groups()) - groups
    train_x, train_y = dataset_features(bb, loaded.train_eval, split=cut)
    test_x, test_y = dataset_features(bb, loaded.val, split=cut)
    sequence = class_incremental_tasks(train_x, train_y, test_x, test_y, tasks, seed)
    widths = segment_widths(segments[0], segments[1], loaded.data_config.input_size)
    return list(run_progressive(sequence, segments[1], widths, epochs, batch_size, seed=seed, log=lambda _: None))
