"""``transferkit export MODEL OUT.onnx|.ts|.pt2``: deployable model, numerically checked."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def export(
    model: Path = typer.Argument(..., help="A trained model (best.pt / model.pt)."),
    out: Path = typer.Argument(..., help="Output file: .onnx, .ts (TorchScript) or .pt2 (torch.export)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="onnx, torchscript or pt2 (default: from suffix)."),
    tolerance: float = typer.Option(1e-4, help="Largest allowed |logit difference| vs PyTorch."),
) -> None:
    """Export and compare the exported model's logits with PyTorch's on a fresh batch."""
    from transferkit.engine.model import load_model
    from transferkit.export import export_model

    report = export_model(load_model(model), out, fmt, tolerance)
    typer.echo(f"{report.format} → {report.path}: max |Δlogit| vs PyTorch {report.max_abs_diff:.2e} (≤ {tolerance})")
