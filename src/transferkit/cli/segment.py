"""``transferkit segment fit|evaluate|predict``: semantic segmentation from a pretrained encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def fit(
    data: Path = typer.Argument(..., help="Folder with images/ and masks/ (or train/ val/ [test/] holding them)."),
    backbone: str = typer.Option("efficientnet_lite0", help="A timm backbone (the encoder)."),
    weights: str = typer.Option("imagenet", help="imagenet (offline caches only), none, or a weights file."),
    arch: str = typer.Option("unet", help="unet, fpn or deeplabv3plus (segmentation-models-pytorch)."),
    strategy: str = typer.Option("fine-tune", help="fine-tune, partial, discriminative, progressive, lp-ft..."),
    epochs: int = typer.Option(30),
    lr: float = typer.Option(1e-3),
    batch_size: int = typer.Option(8),
    image_size: Optional[int] = typer.Option(None, help="Square input size, a multiple of 32."),
    val_fraction: float = typer.Option(0.2, help="Held-out fraction when there is no val/ folder."),
    seed: int = typer.Option(0),
    precision: str = typer.Option("auto"),
    num_workers: int = typer.Option(0, "--workers"),
    out: Path = typer.Option(Path("runs/segment"), help="Run folder (best.pt, last.pt, metrics.csv)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last finished epoch."),
    progress: bool = typer.Option(True),
) -> None:
    """Train a segmentation model; the epoch with the best validation mIoU is kept."""
    from transferkit.backbones import create_backbone
    from transferkit.engine.config import TrainConfig
    from transferkit.segmentation import build_segmenter, fit_segmenter, load_segmentation_data

    source = create_backbone(backbone, weights=weights)
    data = load_segmentation_data(data, source.data_config, image_size, val_fraction, seed)
    model = build_segmenter(source, data.classes, arch, data_config=data.data_config)
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, precision=precision,
                         num_workers=num_workers, progress=progress)  # fmt: skip
    result = fit_segmenter(model, data, strategy, config, out, resume)
    typer.echo(f"best epoch {result.best_epoch + 1}: val mIoU {result.metrics['val_miou']:.4f}, "
               f"Dice {result.metrics['val_dice']:.4f}")  # fmt: skip
    if result.test_metrics is not None:
        test = result.test_metrics
        typer.echo(f"test mIoU {test['miou']:.4f}, Dice {test['dice']:.4f} (test split, scored once after selection)")
    from transferkit.report import dense_report
    from transferkit.segmentation import evaluate_segmenter
    from transferkit.segmentation.overlays import mask_examples, per_class_table

    per_class = per_class_table(evaluate_segmenter(result.model, data.val), data.classes)
    dense_report(out, result, mask_examples(result.model, data.val), per_class)
    typer.echo(f"run folder: {out} (best.pt, metrics.csv, report.html)")


def evaluate(
    model: Path = typer.Argument(..., help="A segmentation run's best.pt."),
    data: Path = typer.Argument(..., help="Folder with images/ and masks/, or with train/ val/ test/ holding them."),
    split: str = typer.Option("test", help="Which sub-folder to score when DATA has train/ val/ (test/)."),
    batch_size: int = typer.Option(8),
) -> None:
    """Per-class IoU and Dice of a trained model on a folder of images and masks."""
    from transferkit.cli._common import scored_folder
    from transferkit.segmentation import MaskFolder, evaluate_segmenter, find_pairs, load_segmenter
    from transferkit.segmentation.data import read_classes

    net = load_segmenter(model)
    _, colours = read_classes(data)
    folder = scored_folder(data, split)
    dataset = MaskFolder(find_pairs(folder), net.data_config, net.data_config.input_size, False, colours)
    typer.echo(f"{len(dataset)} images of {folder}")
    metrics = evaluate_segmenter(net, dataset, batch_size)
    for name, iou, dice in zip(net.classes, metrics["iou"], metrics["dice_per_class"]):
        typer.echo(f"{name:20s} IoU {iou:.4f}  Dice {dice:.4f}")
    typer.echo(f"mean                 IoU {metrics['miou']:.4f}  Dice {metrics['dice']:.4f}")


def predict(
    model: Path = typer.Argument(..., help="A segmentation run's best.pt."),
    images: list[Path] = typer.Argument(..., help="Image files or folders."),
    out: Path = typer.Option(Path("masks"), help="Folder for the predicted masks (class-id PNGs)."),
) -> None:
    """Write one class-id mask PNG per image, at the image's own size, and the pixels per class."""
    from transferkit.inference import list_images
    from transferkit.segmentation import load_segmenter
    from transferkit.segmentation.predict import predict_masks

    net = load_segmenter(model)
    rows = predict_masks(net, list_images(images), out)
    typer.echo(f"{len(rows)} masks → {out} (pixels per class in {out / 'pixels.csv'})")


COMMANDS = {"fit": fit, "evaluate": evaluate, "predict": predict}
