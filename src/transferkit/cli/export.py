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
    quantize: Optional[str] = typer.Option(None, help="int8: also write OUT.int8.onnx (ONNX Runtime, static)."),
    data: Optional[Path] = typer.Option(
        None, help="--quantize: labelled images (e.g. the val folder) to calibrate and score."
    ),
    max_accuracy_drop: float = typer.Option(0.01, help="--quantize: refuse int8 if it loses more accuracy than this."),
    calibration_images: int = typer.Option(100, help="--quantize: images that calibrate the activation ranges."),
) -> None:
    """Export and compare the exported model's logits with PyTorch's on a fresh batch.

    With ``--quantize int8 --data DIR`` the ONNX export is also quantized to int8, and the accuracy
    and speed of both are measured on DIR's images (not those used for calibration).
    """
    from transferkit.engine.model import load_model
    from transferkit.errors import ConfigError
    from transferkit.export import export_model
    from transferkit.segmentation.model import is_segmentation_checkpoint, load_segmenter

    if quantize not in (None, "int8") or (quantize and (data is None or out.suffix != ".onnx")):
        raise ConfigError("Use --quantize int8 with an .onnx OUT and --data DIR (labelled images to measure on).")
    segmenter = is_segmentation_checkpoint(model)
    if segmenter and quantize:
        raise ConfigError("--quantize int8 is built for classifiers only; export the segmentation model without it.")
    net = load_segmenter(model) if segmenter else load_model(model)
    report = export_model(net, out, fmt, tolerance)
    typer.echo(f"{report.format} → {report.path}: max |Δlogit| vs PyTorch {report.max_abs_diff:.2e} (≤ {tolerance})")
    if quantize:
        _quantize(net, out, data, max_accuracy_drop, calibration_images)


def _labelled_arrays(net, data: Path):
    """DATA's images under the model's evaluation transform, and labels in the model's class order."""
    import numpy as np
    import torch

    from transferkit.cli._common import labelled_images
    from transferkit.data import ImageFileDataset, eval_transform
    from transferkit.errors import ConfigError

    classes, samples = labelled_images(data)
    unknown = sorted(set(classes) - set(net.classes))
    if unknown:
        raise ConfigError(f"{data} has classes the model does not know: {unknown}; the model's: {net.classes}.")
    transform = eval_transform(net.data_config)
    dataset = ImageFileDataset(samples, transform)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))]).numpy()
    labels = np.array([net.classes.index(classes[label]) for _, label in samples])
    return images, labels


def _quantize(net, out: Path, data: Path, max_drop: float, calibration_images: int) -> None:
    from transferkit.quantize import quantize_int8

    images, labels = _labelled_arrays(net, data)
    target = out.with_name(out.stem + ".int8.onnx")
    q = quantize_int8(out, target, images, labels, max_drop, calibration_images)
    typer.echo(
        f"int8 → {q.path}: accuracy {q.int8_accuracy:.4f} vs fp32 {q.fp32_accuracy:.4f} (Δ {-q.accuracy_drop:+.4f}), "
        f"{q.int8_images_per_second:.0f} vs {q.fp32_images_per_second:.0f} images/s ({q.speedup:.2f}×) on "
        f"{q.evaluation_images} images of {data} ({q.calibration_images} others calibrated)"
    )
