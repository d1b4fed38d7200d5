"""Learning from unlabelled images: Fashion-MNIST with 100 and 10 labels per class, the rest unlabelled.

For each labelled subset (seeds 0, 1, 2; the same subsets as ``bench_accuracy.py``: 30/class
validation drawn from the training split, the same 2,000 official test images), ``fit
--strategy self-training`` gets the training images that no subset of this benchmark uses
(about 55,000) as its ``--unlabeled`` pool. Rows per subset:
  - self-training (labelled + unlabelled), the round selected on validation;
  - the same MLP head on the labelled images only (self-training's round 0);
  - from ``results/accuracy.json`` (same subsets): pixels and HOG + RBF-SVM, and ``auto``'s labelled-only selection
    (``--refresh-copied`` re-copies them without training).
Test accuracy is computed after selection, for the table only. The pool's features are kept in a
feature store (``--cache-dir``), so only the first run pays for them; a row's wall seconds include them only
if that run computed them.

Usage: python benchmarks/bench_semi.py [--per-class 100,10] [--seeds 0,1,2] [--image-size 96]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "semi_supervised.json"


def pool_indices(per_class: list[int], seeds: list[int]) -> torch.Tensor:
    """Training images outside every labelled/validation subset of this benchmark."""
    from transferkit.data.fashion_mnist import balanced_subset, load_fashion_mnist

    _, labels = load_fashion_mnist("train")
    used = torch.zeros(len(labels), dtype=torch.bool)
    for n in per_class:
        for seed in seeds:
            used[balanced_subset(labels, n + 30, seed)] = True
    return (~used).nonzero().squeeze(1)


def run(per_class: int, seed: int, pool_idx: torch.Tensor, args) -> list[dict]:
    from transferkit.api import evaluate, make_data, train_classifier
    from transferkit.backbones import create_backbone
    from transferkit.data.dataset import TensorImageDataset
    from transferkit.data.fashion_mnist import CLASSES, labelled_split, load_fashion_mnist
    from transferkit.engine.config import TrainConfig
    from transferkit.engine.model import TransferModel

    images, _ = load_fashion_mnist("train")
    train, val, test = labelled_split(per_class, seed)
    backbone = create_backbone(args.backbone)
    data = make_data(train, val, CLASSES, backbone.data_config, "light", test=test, image_size=args.image_size)
    data.unlabeled = TensorImageDataset(images[pool_idx], torch.full((len(pool_idx),), -1))
    config = TrainConfig(seed=seed, progress=False, cache_dir=str(args.cache_dir))
    started = time.perf_counter()
    result = train_classifier(data, backbone, "self-training", config, log=print, report=False)
    wall = time.perf_counter() - started
    head0 = result.extra["round_heads"][0]
    m = result.model
    labelled_only = TransferModel(m.backbone, head0, m.classes, m.head_spec, m.data_config)
    base = {"per_class": per_class, "seed": seed, "backbone": args.backbone, "input_size": args.image_size}
    base["unlabeled"] = len(pool_idx)
    chosen = max(result.extra["rounds"], key=lambda r: r["val_acc"])  # the first of equals, as selected
    return [
        {**base, "method": "self-training", "test_accuracy": round(result.test_metrics.accuracy, 4),
         "wall_seconds": round(wall, 1), "round": chosen["round"], "rounds": result.extra["rounds"]},
        {**base, "method": "same head, labelled only", "wall_seconds": None,
         "test_accuracy": round(evaluate(labelled_only, data.test, config).accuracy, 4)},
    ]  # fmt: skip


def accuracy_rows(per_class: list[int], seeds: list[int]) -> list[dict]:
    """HOG + SVM and auto's labelled-only selection on the same subsets (``results/accuracy.json``)."""
    path = RESULTS / "accuracy.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    names = {
        "pixels-svm": "pixels + RBF-SVM (labelled only)",
        "hog-svm": "HOG + RBF-SVM (labelled only)",
        "auto": "transferkit auto (labelled only)",
    }
    return [
        {"per_class": r["per_class"], "seed": r["seed"], "method": names[r["method"]],
         "test_accuracy": r["test_accuracy"], "wall_seconds": r["wall_seconds"], "from": "accuracy.json"}
        for r in rows
        if r["method"] in names and r["per_class"] in per_class and r["seed"] in seeds
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", default="100,10")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "transferkit-bench-semi")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--pool", type=int, default=None, help="Use only the first N pool images (a smoke run).")
    parser.add_argument(
        "--refresh-copied", action="store_true", help="Only re-copy the accuracy.json rows into --out (no training)."
    )
    args = parser.parse_args()
    per_class = [int(x) for x in args.per_class.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    if args.refresh_copied:
        measured = [r for r in json.loads(args.out.read_text()) if r.get("from") != "accuracy.json"]
        args.out.write_text(json.dumps(measured + accuracy_rows(per_class, seeds), indent=1) + "\n")
        return
    pool = pool_indices([100, 10], [0, 1, 2])[: args.pool]  # the same pool whatever subsets this run covers
    rows = []
    for n in per_class:
        for seed in seeds:
            rows += run(n, seed, pool, args)
            for row in rows[-2:]:
                print(f"{n}/class seed {seed} {row['method']}: test {row['test_accuracy']}", flush=True)
            args.out.write_text(json.dumps(rows, indent=1) + "\n")
    rows += accuracy_rows(per_class, seeds)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
