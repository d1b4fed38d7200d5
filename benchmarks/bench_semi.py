"""Learning from unlabelled images: Fashion-MNIST with 100 and 10 labels per class, the rest unlabelled.

For each labelled subset (seeds 0, 1, 2; the same subsets as ``bench_accuracy.py``: 30/class
validation drawn from the training split, the same 2,000 official test images), ``fit
--strategy self-training`` gets the training images that no subset of this benchmark uses
(about 55,000) as its ``--unlabeled`` pool. Rows per subset:
  - self-training (labelled + unlabelled): round 1 labels the pool by label propagation on the features' k-NN
    graph, later rounds by the previous head; the round selected on validation;
  - the same MLP head on the labelled images only (self-training's round 0);
  - ``--strategy self-training-student``: the deepest 3 layer groups fine-tuned (3 epochs) on the labelled
    images + self-training's class-balanced pseudo-labels of 80 % of the pool;
  - ``--methods gpu-student``: the student's GPU schedule (every layer, RandAugment views, EMA) on the pool's
    pseudo-labels that a self-training run saved with ``--save-probs DIR`` (``--teacher-probs DIR``): the teacher
    runs on a CPU, where its pool features are cached, the student on a GPU; its wall seconds are the student's;
  - ``--strategy fixmatch`` (``--methods fixmatch``): every layer trained on the labelled images and the pool's
    weak/strong views (a GPU's recipe: its row names the device);
  - from ``results/accuracy.json`` (same subsets): pixels and HOG + RBF-SVM, and ``auto``'s labelled-only selection
    (``--refresh-copied`` re-copies them without training).
Test accuracy is computed after selection, for the table only. The pool's features are kept in a
feature store (``--cache-dir``), so only the first run pays for them; a row's wall seconds include them only
if that run computed them.

Each run replaces the rows of the methods it measured (same labels per class and seed) and keeps the others,
so ``--methods self-training-student`` adds the student without re-running self-training.

Usage: python benchmarks/bench_semi.py [--per-class 100,10] [--seeds 0,1,2] [--image-size 96]
       [--methods self-training,self-training-student,fixmatch] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
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


def _subset(per_class: int, seed: int, pool_idx: torch.Tensor, args):
    from transferkit.api import make_data
    from transferkit.backbones import create_backbone
    from transferkit.data.dataset import TensorImageDataset
    from transferkit.data.fashion_mnist import CLASSES, labelled_split, load_fashion_mnist

    images, _ = load_fashion_mnist("train")
    train, val, test = labelled_split(per_class, seed)
    backbone = create_backbone(args.backbone)
    data = make_data(train, val, CLASSES, backbone.data_config, "light", test=test, image_size=args.image_size)
    data.unlabeled = TensorImageDataset(images[pool_idx], torch.full((len(pool_idx),), -1))
    base = {"per_class": per_class, "seed": seed, "backbone": args.backbone, "input_size": args.image_size}
    return backbone, data, {**base, "unlabeled": len(pool_idx)}


def run_student(per_class: int, seed: int, pool_idx: torch.Tensor, args) -> list[dict]:
    from transferkit.api import train_classifier
    from transferkit.engine.config import TrainConfig
    from transferkit.semi import STUDENT

    backbone, data, base = _subset(per_class, seed, pool_idx, args)
    config = TrainConfig(seed=seed, progress=False, cache_dir=str(args.cache_dir))
    started = time.perf_counter()
    result = train_classifier(data, backbone, STUDENT, config, log=print, report=False)
    wall = time.perf_counter() - started
    return [{**base, "method": "self-training student", "test_accuracy": round(result.test_metrics.accuracy, 4),
             "wall_seconds": round(wall, 1), "val_accuracy": round(result.metrics.accuracy, 4),
             "teacher_val_accuracy": round(result.extra["teacher_val_accuracy"], 4),
             "pseudo_labelled": result.extra["pseudo_labelled"],
             "teacher_layers": result.extra["teacher_spec"]["layers"],
             "teacher_head": result.extra["teacher_spec"]["head"]["name"]}]  # fmt: skip


def _device() -> str:
    """What trained: the GPU's name, or ``cpu``."""
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def run_fixmatch(per_class: int, seed: int, pool_idx: torch.Tensor, args) -> list[dict]:
    from transferkit.api import train_classifier
    from transferkit.engine.config import TrainConfig
    from transferkit.semi import FIXMATCH

    backbone, data, base = _subset(per_class, seed, pool_idx, args)
    config = TrainConfig(seed=seed, progress=False, num_workers=args.workers)
    options = json.loads(args.fixmatch_options)
    started = time.perf_counter()
    result = train_classifier(data, backbone, FIXMATCH, config, strategy_options=options, log=print, report=False)
    wall = time.perf_counter() - started
    return [{**base, "method": "fixmatch", "test_accuracy": round(result.test_metrics.accuracy, 4),
             "wall_seconds": round(wall, 1), "val_accuracy": round(result.metrics.accuracy, 4),
             "best_epoch": result.best_epoch + 1, "epochs": len(result.history), "device": _device(),
             "options": options, "history": [{k: r.get(k) for k in ("epoch", "val_acc", "pseudo_labelled_share")}
                                            for r in result.history]}]  # fmt: skip


def run_gpu_student(per_class: int, seed: int, pool_idx: torch.Tensor, args) -> list[dict]:
    """The student's GPU schedule on the pseudo-labels of a self-training run saved with ``--save-probs``."""
    from transferkit.api import evaluate, fit_student
    from transferkit.engine.config import TrainConfig
    from transferkit.semi.student import StudentConfig

    path = args.teacher_probs / f"{per_class}_{seed}.npz"
    if not path.is_file():
        raise SystemExit(f"No teacher probabilities at {path}: run --methods self-training --save-probs DIR first.")
    probs = torch.from_numpy(np.load(path)["probs"].astype(np.float32))[: len(pool_idx)]  # --pool N: the first N
    backbone, data, base = _subset(per_class, seed, pool_idx, args)
    config = TrainConfig(seed=seed, progress=False, num_workers=args.workers)
    started = time.perf_counter()
    result = fit_student(data, backbone, probs, config, settings=StudentConfig.for_device(gpu=True))
    wall = time.perf_counter() - started
    return [{**base, "method": "self-training student, GPU schedule",
             "test_accuracy": round(evaluate(result.model, data.test, config).accuracy, 4),
             "wall_seconds": round(wall, 1), "val_accuracy": round(result.metrics.accuracy, 4),
             "best_epoch": result.best_epoch + 1, "epochs": len(result.history), "device": _device(),
             "cpu_cores": len(os.sched_getaffinity(0)),
             "pseudo_labelled": result.extra["pseudo_labelled"], "student": result.extra["student"],
             "history": [{k: r.get(k) for k in ("epoch", "val_acc", "val_loss")} for r in result.history]}]  # fmt: skip


def run(per_class: int, seed: int, pool_idx: torch.Tensor, args) -> list[dict]:
    from transferkit.api import evaluate, train_classifier
    from transferkit.engine.config import TrainConfig
    from transferkit.engine.model import TransferModel

    backbone, data, base = _subset(per_class, seed, pool_idx, args)
    config = TrainConfig(seed=seed, progress=False, cache_dir=str(args.cache_dir))
    started = time.perf_counter()
    result = train_classifier(data, backbone, "self-training", config, log=print, report=False)
    wall = time.perf_counter() - started
    if args.save_probs is not None:  # the teacher's labels of the pool, for --methods gpu-student elsewhere
        args.save_probs.mkdir(parents=True, exist_ok=True)
        probs = result.extra["pool_probs"].numpy().astype(np.float16)
        np.savez_compressed(args.save_probs / f"{per_class}_{seed}.npz", probs=probs)
    head0 = result.extra["round_heads"][0]
    m = result.model
    labelled_only = TransferModel(m.backbone, head0, m.classes, m.head_spec, m.data_config)
    chosen = max(result.extra["rounds"], key=lambda r: r["val_acc"])  # the first of equals, as selected
    return [
        {**base, "method": "self-training", "test_accuracy": round(result.test_metrics.accuracy, 4),
         "wall_seconds": round(wall, 1), "round": chosen["round"], "rounds": result.extra["rounds"],
         "layers": m.spec()["layers"]},
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
    parser.add_argument("--methods", default="self-training,self-training-student")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "transferkit-bench-semi")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--pool", type=int, default=None, help="Use only the first N pool images (a smoke run).")
    parser.add_argument("--save-probs", type=Path, default=None, help="Write self-training's pool probabilities here.")
    parser.add_argument("--teacher-probs", type=Path, default=None, help="--save-probs's folder (gpu-student).")
    parser.add_argument("--workers", type=int, default=0, help="Loader workers (fixmatch's views).")
    parser.add_argument("--fixmatch-options", default="{}", help='FixMatchConfig fields as JSON, e.g. {"epochs": 12}.')
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
    runners = {"self-training": run, "self-training-student": run_student, "fixmatch": run_fixmatch,
               "gpu-student": run_gpu_student}  # fmt: skip
    kept = json.loads(args.out.read_text()) if args.out.exists() else []
    rows = [r for r in kept if r.get("from") != "accuracy.json"]  # re-copied at the end
    for n in per_class:
        for seed in seeds:
            for method in args.methods.split(","):
                new = runners[method](n, seed, pool, args)
                for row in new:
                    print(f"{n}/class seed {seed} {row['method']}: test {row['test_accuracy']}", flush=True)
                rows = _merge(rows, new)
                args.out.write_text(json.dumps(rows, indent=1) + "\n")
    sizes, drawn = sorted({r["per_class"] for r in rows}), sorted({r["seed"] for r in rows})  # every stored row's
    rows = _merge(rows, accuracy_rows(sizes, drawn))
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


def _merge(rows: list[dict], new: list[dict]) -> list[dict]:
    """``rows`` with those of the same (per_class, seed, method) as a row of ``new`` replaced by it."""
    key = lambda r: (r["per_class"], r["seed"], r["method"])  # noqa: E731
    replaced = {key(r) for r in new}
    return [r for r in rows if key(r) not in replaced] + new


if __name__ == "__main__":
    main()
