"""``transferkit anomaly fit|evaluate|predict``: defect detection trained on normal images only."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import typer


def fit(
    data: Path = typer.Argument(..., help="MVTec AD layout: train/good/, test/<kind>/, ground_truth/<kind>/."),
    method: str = typer.Option("patchcore", help="patchcore or padim."),
    backbone: str = typer.Option(  # transferkit.anomaly.model's BACKBONE and IMAGE_SIZE (not imported: no torch)
        "efficientnet_lite2", help="A timm backbone (its mid-level stages)."
    ),
    weights: str = typer.Option("imagenet", help="imagenet (offline caches only), none, or a weights file."),
    image_size: int = typer.Option(
        320, help="Images are resized to this square size (anomalib: 256; finer defects need more)."
    ),
    held_out: float = typer.Option(0.2, help="Share of train/good kept out of the model to set the threshold."),
    seed: int = typer.Option(0),
    strides: str = typer.Option(
        "", help="Backbone stages to read, by stride in px, e.g. 8,16 (default: patchcore 4,8; padim 4,8,16)."
    ),
    out: Path = typer.Option(Path("runs/anomaly"), help="Run folder (model.pt, metrics, report.html)."),
) -> None:
    """Learn what normal looks like; score test/ (image and pixel AUROC) and write a report with heatmaps."""
    from transferkit.anomaly.run import fit_anomaly

    chosen = _strides(strides)
    weights = None if weights == "none" else weights
    run = fit_anomaly(data, backbone, method, weights, image_size, held_out, seed, chosen)
    run.model.save(out / "model.pt")
    threshold = run.model.threshold
    typer.echo(f"{method} on {backbone}: threshold {threshold:.4f}" if threshold is not None else f"{method} fitted")
    if run.test is not None:
        m = run.metrics
        typer.echo(
            f"test image AUROC {_fmt(m['image_auroc'])}, pixel AUROC {_fmt(m['pixel_auroc'])}, "
            f"AUPRO@0.3 {_fmt(m['aupro'])}"
        )
        _report(out, run)
    typer.echo(f"run folder: {out} (model.pt{', report.html' if run.test is not None else ''})")


def _strides(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"--strides takes whole numbers separated by commas (4,8); got {text!r}.") from None


def _fmt(value: float) -> str:
    return "— (needs normal and defective images)" if math.isnan(value) else f"{value:.4f}"


def _report(out: Path, run) -> None:
    from transferkit.anomaly.overlays import heatmap_examples
    from transferkit.report import Report, png_bytes

    report = Report(f"transferkit anomaly run: {run.model.spec()['backbone']} · {run.model.method.name}")
    metrics = {k: run.metrics[k] for k in ("image_auroc", "pixel_auroc", "aupro")}
    report.section("Results (test split)").append(("table", (list(metrics), [list(metrics.values())])))
    shown = heatmap_examples(run.model, run.test, run.metrics["scores"], run.metrics["maps"])
    images = [(png_bytes(array, scale=2), caption) for array, caption in shown]
    report.section("Test images: image | heatmap | truth").append(("images", images))
    report.section("Model").append(("code", "\n".join(f"{k}: {v}" for k, v in run.model.spec().items())))
    report.write(out)


def evaluate(
    model: Path = typer.Argument(..., help="An anomaly run's model.pt."),
    data: Path = typer.Argument(..., help="MVTec AD layout with test/ (and ground_truth/ for pixel AUROC)."),
) -> None:
    """Image and pixel AUROC of a fitted anomaly model on a folder's test/ images."""
    from transferkit.anomaly import AnomalyImages, load_anomaly_model, read_anomaly_folder
    from transferkit.anomaly.run import evaluate_anomaly

    net = load_anomaly_model(model)
    samples = read_anomaly_folder(data).test
    metrics = evaluate_anomaly(net, AnomalyImages(samples, net.features.data_config, net.image_size))
    typer.echo(f"image AUROC {_fmt(metrics['image_auroc'])}, pixel AUROC {_fmt(metrics['pixel_auroc'])}, "
               f"AUPRO@0.3 {_fmt(metrics['aupro'])} on {len(samples)} images")  # fmt: skip


def predict(
    model: Path = typer.Argument(..., help="An anomaly run's model.pt."),
    images: list[Path] = typer.Argument(..., help="Image files or folders."),
    out: Path = typer.Option(Path("anomaly_scores.csv"), help="CSV: path, score, anomalous (score > threshold)."),
    maps: Path | None = typer.Option(None, help="Folder for one heatmap PNG per image (at the image's size)."),
) -> None:
    """Anomaly score per image, flagged above the model's threshold; optional heatmaps."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from transferkit.anomaly import load_anomaly_model
    from transferkit.data.images import load_image
    from transferkit.data.transforms import eval_transform
    from transferkit.inference import list_images

    net = load_anomaly_model(model)
    transform = eval_transform(net.features.data_config, net.image_size)
    rows = []
    for path in list_images(images):
        image = load_image(path)
        score, heat = net.score(transform(image)[None])
        flagged = net.threshold is not None and float(score) > net.threshold
        rows.append([str(path), round(float(score), 6), int(flagged)])
        if maps is not None:
            maps.mkdir(parents=True, exist_ok=True)
            full = F.interpolate(heat[None], size=image.shape[-2:], mode="bilinear")[0, 0]
            scaled = (full / max(float(full.max()), 1e-12) * 255).clamp(0, 255).to(torch.uint8).numpy()
            Image.fromarray(np.asarray(scaled)).save(maps / f"{Path(path).stem}.png")
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", newline="") as handle:
        csv.writer(handle).writerows([["path", "score", "anomalous"], *rows])
    os.replace(tmp, out)
    typer.echo(f"{sum(r[2] for r in rows)} of {len(rows)} images above the threshold → {out}")


COMMANDS = {"fit": fit, "evaluate": evaluate, "predict": predict}
