"""``transferkit detect fit|evaluate|predict``: object detection (and counting) from a pretrained backbone."""

from __future__ import annotations

from pathlib import Path

import typer


def fit(
    data: Path = typer.Argument(..., help="images/ + annotations.json (COCO) or labels/ (YOLO), or train/ val/."),
    backbone: str = typer.Option("efficientnet_lite0", help="A timm backbone (the FPN's stages)."),
    weights: str = typer.Option("imagenet", help="imagenet (offline caches only), none, or a weights file."),
    arch: str = typer.Option(
        "fasterrcnn",
        help="fasterrcnn, retinanet, fcos, maskrcnn (instance masks from COCO polygons/RLE) or keypointrcnn "
        "(COCO keypoints).",
    ),
    strategy: str = typer.Option("fine-tune", help="fine-tune, partial, discriminative, progressive..."),
    epochs: int = typer.Option(25),
    lr: float = typer.Option(1e-3),
    batch_size: int = typer.Option(8),
    image_size: int = typer.Option(128, help="Images are resized to this square size."),
    val_fraction: float = typer.Option(0.2, help="Held-out fraction when there is no val/ folder."),
    seed: int = typer.Option(0),
    num_workers: int = typer.Option(0, "--workers"),
    out: Path = typer.Option(Path("runs/detect"), help="Run folder (best.pt, last.pt, metrics.csv)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last finished epoch."),
    progress: bool = typer.Option(True),
) -> None:
    """Train a detector; the epoch with the best validation mAP@.5 (of the masks for maskrcnn) is kept."""
    from transferkit.detection import build_detector, fit_detector, load_detection_data
    from transferkit.engine.config import TrainConfig

    data_ = load_detection_data(data, image_size, val_fraction, seed, arch == "maskrcnn", arch == "keypointrcnn")
    model = build_detector(backbone, data_.classes, arch, weights, image_size, data_.keypoint_names)
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, num_workers=num_workers,
                         progress=progress, precision="32-true")  # fmt: skip
    result = fit_detector(model, data_, strategy, config, out, resume)
    best = {k.removeprefix("val_"): v for k, v in result.metrics.items() if k.startswith("val_")}
    typer.echo(f"best epoch {result.best_epoch + 1}: val {_describe(best)}")
    if result.test_metrics is not None:
        typer.echo(f"test {_describe(result.test_metrics)} (test split, scored once after selection)")
    from transferkit.detection.overlays import box_examples
    from transferkit.report import dense_report

    dense_report(out, result, box_examples(result.model, data_.val))
    typer.echo(f"run folder: {out} (best.pt, metrics.csv, report.html)")


def _describe(metrics: dict[str, float]) -> str:
    """Box (and mask) mAP@.5 and mAP@[.5:.95], whichever of the two key spellings the metrics use."""
    get = lambda *keys: next((metrics[k] for k in keys if k in metrics), None)  # noqa: E731
    text = f"box mAP@.5 {get('map_50', 'map50'):.4f}, mAP {get('map'):.4f}"
    if get("mask_map") is not None:
        text += f"; mask mAP@.5 {get('mask_map_50', 'mask_map50'):.4f}, mAP {get('mask_map'):.4f}"
    if get("pck") is not None:
        text += f"; keypoints PCK@0.1 {get('pck'):.4f}, OKS {get('oks'):.4f}"
    return text


def evaluate(
    model: Path = typer.Argument(..., help="A detection run's best.pt."),
    data: Path = typer.Argument(
        ..., help="images/ + annotations.json (COCO) or labels/ (YOLO), or train/ val/ test/ holding them."
    ),
    split: str = typer.Option("test", help="Which sub-folder to score when DATA has train/ val/ (test/)."),
    batch_size: int = typer.Option(8),
) -> None:
    """COCO mAP@[.5:.95] and mAP@.5 of a trained detector (and of its masks) on an annotated folder."""
    from transferkit.cli._common import scored_folder
    from transferkit.detection import BoxFolder, evaluate_detector, load_detector
    from transferkit.detection.data import read_folder

    net = load_detector(model)
    data = scored_folder(data, split)
    classes, items = read_folder(data)
    if classes != net.classes:
        from transferkit.errors import ConfigError

        raise ConfigError(f"{data} has classes {classes}; the model was trained on {net.classes}.")
    folder = BoxFolder(
        items, net.data_config.input_size, False, masks=net.with_masks, keypoints=len(net.keypoint_names)
    )
    metrics = evaluate_detector(net, folder, batch_size)
    typer.echo(f"{_describe(metrics)} on {len(items)} images of {data}")


def predict(
    model: Path = typer.Argument(..., help="A detection run's best.pt."),
    images: list[Path] = typer.Argument(..., help="Image files or folders."),
    out: Path = typer.Option(Path("detections.csv"), help="CSV of boxes (counts per image beside it)."),
    min_score: float = typer.Option(0.5, help="Boxes below this score are left out (and not counted)."),
) -> None:
    """Boxes, classes and scores per image, in the image's own pixels (with each instance's area in pixels for
    maskrcnn, its keypoints for keypointrcnn), and the objects counted per class."""
    from transferkit.detection import load_detector
    from transferkit.detection.predict import predict_files
    from transferkit.inference import list_images

    net = load_detector(model)
    counts = predict_files(net, list_images(images), out, min_score)
    total = sum(sum(c.values()) for c in counts.values())
    counts_file = out.with_name(out.stem + "_counts.csv")
    typer.echo(f"{total} objects in {len(counts)} images → {out} (counts per image: {counts_file})")


COMMANDS = {"fit": fit, "evaluate": evaluate, "predict": predict}
