"""Speed of the strategies on Fashion-MNIST: images/s and wall time beside accuracy.

Compares, on the same labelled subset and the same EfficientNet-Lite0 ImageNet weights:
  1. feature extraction with the frozen-backbone cache (backbone runs once per image),
  2. feature extraction, naive loop (frozen backbone recomputed every epoch),
  3. partial fine-tuning of the last 2 layer groups with the frozen bottom's outputs cached,
  4. the same, naive loop (frozen bottom recomputed every epoch),
  5. full fine-tuning,
and the backbone's raw inference speed in fp32 vs. bf16 autocast, NCHW vs. channels_last.

Usage: python benchmarks/bench_cache.py [--per-class 100] [--epochs 5] [--image-size 96]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from transferkit.api import evaluate, make_data, train_classifier
from transferkit.backbones import create_backbone
from transferkit.data.dataset import TensorImageDataset
from transferkit.data.fashion_mnist import CLASSES, balanced_subset, load_fashion_mnist
from transferkit.engine.config import TrainConfig


def inference_speed(image_size: int, batch: int = 64, repeats: int = 3) -> list[dict]:
    backbone = create_backbone("efficientnet_lite0").eval()
    rows = []
    for layout in ("nchw", "channels_last"):
        net = backbone.to(memory_format=torch.channels_last if layout == "channels_last" else torch.contiguous_format)
        x = torch.randn(batch, 3, image_size, image_size)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        for dtype in ("fp32", "bf16"):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                net(x)
                start = time.perf_counter()
                for _ in range(repeats):
                    net(x)
                seconds = time.perf_counter() - start
            rows.append(
                {"layout": layout, "precision": dtype, "images_per_second": round(batch * repeats / seconds, 1)}
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    speed = inference_speed(args.image_size)
    print(f"\nEfficientNet-Lite0 inference, batch 64, {args.image_size}px:")
    for r in speed:
        print(f"  {r['layout']:14s} {r['precision']:5s} {r['images_per_second']:8.1f} img/s")

    images, labels = load_fashion_mnist("train")
    test_x, test_y = load_fashion_mnist("test")
    idx = balanced_subset(labels, args.per_class)
    val_idx = balanced_subset(test_y, 50, seed=1)
    train = TensorImageDataset(images[idx], labels[idx])
    val = TensorImageDataset(test_x[val_idx], test_y[val_idx])

    runs = [
        ("feature extraction + cache", "feature-extraction", {"cache": "auto"}),
        ("feature extraction, naive loop", "feature-extraction", {"cache": "off"}),
        ("partial (last 2 groups) + cache", "partial", {"cache": "auto"}),
        ("partial (last 2 groups), naive", "partial", {"cache": "off"}),
        ("full fine-tune", "fine-tune", {}),
    ]
    rows = []
    for title, strategy, options in runs:
        backbone = create_backbone("efficientnet_lite0")
        data = make_data(train, val, CLASSES, backbone.data_config, preset="none", image_size=args.image_size)
        config = TrainConfig(
            epochs=args.epochs,
            lr=3e-3 if strategy == "feature-extraction" else 1e-3,
            batch_size=64,
            progress=False,
            **options,
        )
        start = time.perf_counter()
        strategy_options = {"groups": 2} if strategy == "partial" else None
        result = train_classifier(
            data, backbone, strategy, config, strategy_options=strategy_options, log=lambda *_: None
        )
        wall = time.perf_counter() - start
        acc = evaluate(result.model, data.val, config).accuracy
        images_seen = len(train) * len(result.history)
        rows.append(
            {
                "run": title,
                "epochs": len(result.history),
                "val_accuracy": round(acc, 4),
                "wall_seconds": round(wall, 1),
                "images_per_second": round(images_seen / wall, 1),
            }
        )
        print(
            f"{title:32s} acc {acc:.4f}  wall {wall:7.1f} s  {images_seen / wall:8.1f} img/s (epochs × images / wall)"
        )
    (args.out / "bench.json").write_text(json.dumps({"inference": speed, "training": rows}, indent=2))
    for cached, naive in ((rows[0], rows[1]), (rows[2], rows[3])):
        speedup = naive["wall_seconds"] / cached["wall_seconds"]
        print(f"{cached['run']}: {speedup:.1f}× less wall time than the naive loop")


if __name__ == "__main__":
    main()
