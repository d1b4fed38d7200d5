"""``transferkit distill TEACHER DATA --student mobilenetv3_small_100``: knowledge distillation."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def distill(
    teacher: Path = typer.Argument(..., help="A trained model (a fit run's best.pt)."),
    data: Path = typer.Argument(..., help="The teacher's training data layout (class sub-folders...)."),
    student: str = typer.Option(..., help="Student backbone name."),
    weights: str = typer.Option("imagenet", help="Student's starting weights (imagenet, none, or a file)."),
    epochs: int = typer.Option(10),
    lr: float = typer.Option(1e-3),
    batch_size: int = typer.Option(32),
    temperature: float = typer.Option(4.0),
    alpha: float = typer.Option(0.5, help="Weight of the hard-label loss (0: pure distillation)."),
    preset: str = typer.Option("light"),
    image_size: Optional[int] = typer.Option(None),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("runs/distill/student.pt")),
    resume: bool = typer.Option(False, help="Continue a killed run from the checkpoints beside --out."),
) -> None:
    """Train a smaller student on the teacher's softened outputs; save it and report accuracy.

    Every epoch is checkpointed in OUT's folder (``<name>-checkpoints/last.pt``); ``--resume`` continues there.
    """
    import torch

    from transferkit.api import load_data
    from transferkit.backbones import create_backbone
    from transferkit.engine.callbacks import Checkpointer
    from transferkit.engine.distill import distill as run_distill
    from transferkit.engine.model import build_model, load_model

    torch.manual_seed(seed)
    teacher_model = load_model(teacher)
    size = image_size or teacher_model.data_config.input_size
    loaded = load_data(data, teacher_model.data_config, preset=preset, image_size=size, seed=seed)
    bb = create_backbone(student, weights=weights)
    student_model = build_model(bb, len(teacher_model.classes), teacher_model.classes, data_config=loaded.data_config)
    facts = {
        "teacher": str(teacher.resolve()),
        "data": str(data.resolve()),
        "student": student,
        "weights": weights,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "temperature": temperature,
        "alpha": alpha,
        "preset": preset,
        "image_size": size,
        "seed": seed,
    }  # what the run is: a --resume must match
    result = run_distill(
        teacher_model,
        student_model,
        loaded.train,
        loaded.val,
        epochs,
        lr,
        batch_size,
        temperature,
        alpha,
        seed,
        log=typer.echo,
        callbacks=[Checkpointer(out.parent / f"{out.stem}-checkpoints", resume, facts)],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    result.student.save(out)
    t_params = sum(p.numel() for p in teacher_model.parameters())
    s_params = sum(p.numel() for p in result.student.parameters())
    typer.echo(
        f"student: val accuracy {result.val_accuracy:.4f}, agreement with teacher {result.teacher_agreement:.4f}, "
        f"{s_params:,} parameters vs teacher {t_params:,} → {out}"
    )
