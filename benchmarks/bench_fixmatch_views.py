"""FixMatch's views made on the device vs by the loader's workers: training images per second, same process.

One FixMatch epoch of ``--steps`` steps (at least a pass over the labelled images: 16 at 100/class; 64
labelled + 7 × 64 unlabelled images a step, each unlabelled image as a weak and a strong view: 960 images a
step) on Fashion-MNIST at 96 px, after the linear probe, for each way of making the views; the epoch's
seconds include the loader starting its workers. Writes
``results/fixmatch_views.json``: ``{"loader": {...}, "device": {...}, "speedup": x}``.

Usage: python benchmarks/bench_fixmatch_views.py [--steps 16] [--workers 2] [--per-class 100]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

OUT = Path(__file__).parent / "results" / "fixmatch_views.json"


def measure(augment_on: str, args) -> dict:
    from transferkit.api import make_data, train_classifier
    from transferkit.backbones import create_backbone
    from transferkit.data.dataset import TensorImageDataset
    from transferkit.data.fashion_mnist import CLASSES, labelled_split, load_fashion_mnist
    from transferkit.engine.config import TrainConfig
    from transferkit.semi import FIXMATCH

    images, _ = load_fashion_mnist("train")
    train, val, _ = labelled_split(args.per_class, 0)
    backbone = create_backbone("efficientnet_lite0")
    data = make_data(train, val, CLASSES, backbone.data_config, "light", image_size=96)
    steps = max(args.steps, math.ceil(len(train) / 64))  # an epoch: a pass over the larger set
    pool = images[-7 * 64 * steps :]  # steps × 448 unlabelled images
    data.unlabeled = TensorImageDataset(pool, torch.full((len(pool),), -1))
    options = {"epochs": 2, "min_steps": steps, "augment_on": augment_on}
    config = TrainConfig(seed=0, progress=False, num_workers=args.workers)
    result = train_classifier(data, backbone, FIXMATCH, config, strategy_options=options, log=print, report=False)
    row = result.history[1]  # the FixMatch epoch (the first is the solved probe)
    per_step = 64 + 2 * 7 * 64
    return {
        "steps": steps,
        "epoch_seconds": row["epoch_seconds"],
        "images_per_second": round(steps * per_step / row["epoch_seconds"], 1),
        "data_wait_fraction": row.get("data_wait_fraction"),
    }


def pool_loading(args) -> dict:
    """Unlabelled images per second that the loader gives device views: resized at every access (``--workers``
    workers) vs resized once and kept in memory (indexing a tensor), 96 px, and what resizing once costs."""
    from torch.utils.data import DataLoader

    from transferkit.data.dataset import TensorImageDataset, WithTransform
    from transferkit.data.fashion_mnist import load_fashion_mnist
    from transferkit.data.resized import resize_once
    from transferkit.data.transforms import resized_uint8

    images, _ = load_fashion_mnist("train")
    pool = TensorImageDataset(images[: 448 * args.batches], torch.full((448 * args.batches,), -1))
    started = time.perf_counter()
    kept, _ = resize_once(pool, 96, "bicubic", args.workers)
    once = time.perf_counter() - started
    rates = {}
    for name, dataset, workers in (("resized_each_time", WithTransform(pool, resized_uint8(96, "bicubic")),
                                    args.workers), ("resized_once", kept, 0)):  # fmt: skip
        loader = DataLoader(dataset, batch_size=448, shuffle=True, num_workers=workers)
        started = time.perf_counter()
        count = sum(len(batch[0]) for batch in loader)
        rates[name] = round(count / (time.perf_counter() - started), 1)
    return {"images": len(pool), "images_per_second": rates, "resize_once_seconds": round(once, 2),
            "speedup": round(rates["resized_once"] / rates["resized_each_time"], 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=100, help="Labelled images per class (1000: 16 steps).")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--batches", type=int, default=20, help="--loading-only: batches of 448 images.")
    parser.add_argument(
        "--loading-only", action="store_true", help="Only the loader's side (no model): adds pool_loading to --out."
    )
    args = parser.parse_args()
    if args.loading_only:  # no model: how fast the loader feeds device views (measured on any machine)
        loading = pool_loading(args)
        saved = json.loads(args.out.read_text()) if args.out.exists() else {}
        args.out.write_text(json.dumps({**saved, "pool_loading": loading, "pool_loading_cpu_cores": len(
            os.sched_getaffinity(0))}, indent=1) + "\n")  # fmt: skip
        print(json.dumps(loading))
        return
    results = {mode: measure(mode, args) for mode in ("loader", "device")}
    results["speedup"] = round(results["device"]["images_per_second"] / results["loader"]["images_per_second"], 2)
    results["device_name"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    results["cpu_cores"], results["workers"] = os.cpu_count(), args.workers
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
