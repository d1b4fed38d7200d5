"""Segmentation on real photos, end to end: Fashion-MNIST items composited onto scikit-image's
brick, grass and gravel photos (exact masks), a U-Net on ImageNet EfficientNet-Lite0, then masks
and per-class pixel counts for new images. The pretrained-vs-scratch comparison over seeds, with
the classical baseline beside it, is `benchmarks/bench_dense.py`.

Run: python examples/segmentation.py [--epochs 30]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from transferkit.backbones import create_backbone
from transferkit.engine.config import TrainConfig
from transferkit.inference import list_images
from transferkit.segmentation import build_segmenter, evaluate_segmenter, fit_segmenter, load_segmentation_data
from transferkit.segmentation.composites import write_dataset
from transferkit.segmentation.predict import predict_masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(Path(tmp) / "data", train=100, val=50, test=200, size=128)
        source = create_backbone("efficientnet_lite0")
        data = load_segmentation_data(root, source.data_config, 128)
        model = build_segmenter(source, data.classes, "unet", data_config=data.data_config)
        config = TrainConfig(epochs=args.epochs, batch_size=8, lr=1e-3, progress=False)
        result = fit_segmenter(model, data, "fine-tune", config, log=lambda *_: None)
        test = evaluate_segmenter(result.model, data.test)
        print(f"best epoch {result.best_epoch + 1}: val mIoU {result.metrics['val_miou']:.3f}")
        for name, iou, dice in zip(data.classes, test["iou"], test["dice_per_class"]):
            print(f"  test {name:10s} IoU {iou:.3f}  Dice {dice:.3f}")
        print(f"test mIoU {test['miou']:.3f} (200 images, items from Fashion-MNIST's test split)")
        rows = predict_masks(result.model, list_images([root / "test" / "images"])[:3], Path(tmp) / "masks")
        for row in rows:
            print(f"  {Path(row['path']).name}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "path"))


if __name__ == "__main__":
    main()
