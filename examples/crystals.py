"""Counting and measuring crystals, end to end: synthetic 16-bit micrographs (touching, partly hidden
crystals of three habits, blur and shot noise; exact masks in COCO), Mask R-CNN on ImageNet
EfficientNet-Lite0, then per image the crystals counted by habit and each one's area in pixels; and
a Keypoint R-CNN that finds the two tips of each needle, whose distance is its length. The
pretrained-vs-scratch comparison over seeds, with the classical baseline beside it, is
`benchmarks/bench_dense.py --tasks instance`.

Run: python examples/crystals.py [--epochs 15]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from transferkit.backbones import create_backbone
from transferkit.detection import build_detector, fit_detector, load_detection_data
from transferkit.detection.crystals import write_crystals
from transferkit.detection.predict import predict_files
from transferkit.engine.config import TrainConfig
from transferkit.inference import list_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_crystals(Path(tmp) / "data", {"train": 100, "val": 50, "test": 100}, size=128)
        config = TrainConfig(epochs=args.epochs, batch_size=8, lr=1e-3, progress=False)
        for arch, keypoints in (("maskrcnn", False), ("keypointrcnn", True)):
            data = load_detection_data(root, 128, masks=not keypoints, keypoints=keypoints)
            model = build_detector(create_backbone("efficientnet_lite0"), data.classes, arch, image_size=128,
                                   keypoints=data.keypoint_names)  # fmt: skip
            result = fit_detector(model, data, "fine-tune", config, out=Path(tmp) / arch, log=lambda *_: None)
            test = {k: round(v, 3) for k, v in result.test_metrics.items()}
            print(f"{arch}: best epoch {result.best_epoch + 1}; test {test} (100 images, scored once)")
            files = list_images([root / "test" / "images"])[:3]
            counts = predict_files(result.model, files, Path(tmp) / f"{arch}.csv", min_score=0.5)
            for path, per_class in counts.items():
                print(f"  {Path(path).name}: " + ", ".join(f"{name} {n}" for name, n in per_class.items()))
            with (Path(tmp) / f"{arch}.csv").open() as handle:
                for row in list(csv.DictReader(handle))[:4]:
                    if "area_px" in row:
                        extra = f"area {row['area_px']} px"
                    elif row["class"] == "needle":  # only needles have labelled tips: their length
                        tips = [float(row[k]) for k in ("tip_left_x", "tip_left_y", "tip_right_x", "tip_right_y")]
                        extra = f"length {((tips[2] - tips[0]) ** 2 + (tips[3] - tips[1]) ** 2) ** 0.5:.1f} px"
                    else:
                        extra = "(no tips: not a needle)"
                    print(f"    {row['class']} {float(row['score']):.2f}: {extra}")


if __name__ == "__main__":
    main()
