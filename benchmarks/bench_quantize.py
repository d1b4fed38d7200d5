"""int8 vs fp32 ONNX: accuracy and CPU speed of a transferred model (issue 12, edge deployment).

EfficientNet-Lite0 (ImageNet weights) with its linear head solved on 100 Fashion-MNIST images per
class at 96 px, exported to ONNX, quantized to int8 (ONNX Runtime static QDQ, per-channel weights)
with 100 images of a held-out set for calibration, and both scored on the other 900.
Writes ``benchmarks/results/quantize.json``.

Usage: python benchmarks/bench_quantize.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from transferkit.api import make_data, train_classifier
from transferkit.backbones import create_backbone
from transferkit.data.fashion_mnist import CLASSES, labelled_split
from transferkit.engine.config import TrainConfig
from transferkit.export import export_model
from transferkit.quantize import quantize_int8

RESULTS = Path(__file__).parent / "results" / "quantize.json"


def main() -> None:
    train, val, test = labelled_split(100, seed=0, test_images=1000)
    backbone = create_backbone("efficientnet_lite0")
    data = make_data(train, val, list(CLASSES), backbone.data_config, preset="none", image_size=96)
    cfg = TrainConfig(epochs=1, progress=False, precision="32-true")
    model = train_classifier(data, backbone, "feature-extraction", cfg, log=lambda *_: None, report=False).model.eval()
    held_out = make_data(train, test, list(CLASSES), data.data_config, preset="none", image_size=96).val
    images = torch.stack([held_out[i][0] for i in range(len(held_out))]).numpy()
    labels = np.array([int(held_out[i][1]) for i in range(len(held_out))])
    folder = Path(tempfile.mkdtemp())
    started = time.perf_counter()
    export_model(model, folder / "model.onnx")
    report = quantize_int8(folder / "model.onnx", folder / "model.int8.onnx", images, labels, max_accuracy_drop=1.0)
    row = {
        "model": "efficientnet_lite0 features + linear head, 96 px",
        "calibration_images": report.calibration_images,
        "evaluation_images": report.evaluation_images,
        "fp32_accuracy": round(report.fp32_accuracy, 4),
        "int8_accuracy": round(report.int8_accuracy, 4),
        "fp32_images_per_second": round(report.fp32_images_per_second, 1),
        "int8_images_per_second": round(report.int8_images_per_second, 1),
        "speedup": round(report.speedup, 2),
        "size_mb": {p.name: round(p.stat().st_size / 2**20, 2) for p in (folder / "model.onnx", report.path)},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    print(row)
    RESULTS.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
