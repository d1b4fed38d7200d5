"""Do the unlabelled-image defaults generalise? ``transferkit fit DATA --unlabeled DIR`` on scikit-learn's digits.

Tiny scans (8×8 grayscale, 1,797 images), unlike Fashion-MNIST. The test split is fixed (50 images a
class, the same for every seed); for each seed (0, 1, 2) 10 labelled and 10 validation images a class
are drawn from the rest, and every other image goes, without its label, into ``--unlabeled``. Each
subset is written as PNG folders and run through the command line exactly as a user would:
  - ``fit DATA --unlabeled DIR`` with no other option (``auto``: classical baselines, transfer
    recipes, self-training, an ensemble; the best on validation kept);
  - ``fit DATA --unlabeled DIR --strategy self-training``;
  - ``fit DATA --strategy sklearn-hog-svm`` and ``sklearn-pixels-svm`` (labelled only).
Test accuracy is read from the run's ``best_metrics.json`` (scored once, after selection); for ``auto``,
what it kept and its paired validation margins (``auto.json``'s ``selection``).

Each run replaces the rows of the methods it ran (same seed) and keeps the others.

Usage: python benchmarks/bench_semi_digits.py [--seeds 0,1,2] [--methods auto,self-training,hog-svm,pixels-svm]
       (~11 minutes a seed on 2 cores for all four)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "semi_digits.json"
TEST, LABELLED, VAL = 50, 10, 10  # images a class
RUNS = {
    "transferkit fit --unlabeled (auto)": ["--unlabeled", "{unlabeled}"],
    "self-training": ["--unlabeled", "{unlabeled}", "--strategy", "self-training"],
    "HOG + RBF-SVM (labelled only)": ["--strategy", "sklearn-hog-svm"],
    "pixels + RBF-SVM (labelled only)": ["--strategy", "sklearn-pixels-svm"],
}
SHORT = dict(zip(("auto", "self-training", "hog-svm", "pixels-svm"), RUNS))  # --methods' names


def splits(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Indices of test (fixed), train and val (drawn by ``seed``) and the unlabelled rest."""
    fixed, drawn = np.random.default_rng(1234), np.random.default_rng(seed)
    out: dict[str, list[int]] = {"test": [], "train": [], "val": [], "unlabeled": []}
    for c in range(int(labels.max()) + 1):
        idx = fixed.permutation(np.flatnonzero(labels == c))
        rest = drawn.permutation(idx[TEST:])
        out["test"] += idx[:TEST].tolist()
        out["train"] += rest[:LABELLED].tolist()
        out["val"] += rest[LABELLED : LABELLED + VAL].tolist()
        out["unlabeled"] += rest[LABELLED + VAL :].tolist()
    return {k: np.array(v) for k, v in out.items()}


def write_folders(root: Path, seed: int) -> tuple[Path, Path]:
    """DATA/{train,val,test}/<class>/*.png and UNLABELED/*.png for ``seed``'s subset."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = (digits.images * 255 / 16).round().astype(np.uint8), digits.target
    for split, idx in splits(labels, seed).items():
        for i in idx:
            folder = root / "unlabeled" if split == "unlabeled" else root / "data" / split / str(labels[i])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i], "L").save(folder / f"{i:04d}.png")
    return root / "data", root / "unlabeled"


def run_fit(data: Path, unlabeled: Path, options: list[str], out: Path) -> tuple[dict, float]:
    command = [sys.executable, "-m", "transferkit", "fit", str(data), "--out", str(out), "--no-progress"]
    command += [o.format(unlabeled=unlabeled) for o in options]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return json.loads((out / "best_metrics.json").read_text()), time.perf_counter() - started


def run_seed(seed: int, work: Path, methods: list[str]) -> list[dict]:
    data, unlabeled = write_folders(work / f"seed{seed}", seed)
    pool = len(list(unlabeled.iterdir()))
    rows = []
    for method in methods:
        options = RUNS[method]
        out = work / f"seed{seed}" / method.split()[0].lower()
        metrics, wall = run_fit(data, unlabeled, options, out)
        row = {"dataset": "digits", "per_class": LABELLED, "seed": seed, "method": method,
               "unlabeled": pool, "test_accuracy": round(metrics["test"]["accuracy"], 4),
               "val_accuracy": round(metrics["accuracy"], 4), "wall_seconds": round(wall, 1)}  # fmt: skip
        if "recipe" in metrics:  # auto: what it kept and how sure validation is of it
            row["selected"] = metrics["recipe"]
            row["selection"] = json.loads((out / "auto.json").read_text())["selection"]
        print(f"seed {seed} {method}: test {row['test_accuracy']} ({row.get('selected', '')})", flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(SHORT), help=f"Some of {', '.join(SHORT)}.")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    unknown = sorted(set(args.methods.split(",")) - set(SHORT))
    if unknown:
        parser.error(f"unknown --methods {unknown}: choose from {', '.join(SHORT)}")
    methods = [SHORT[m] for m in args.methods.split(",")]
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    with tempfile.TemporaryDirectory() as work:
        for seed in (int(s) for s in args.seeds.split(",")):
            new = run_seed(seed, Path(work), methods)
            rows = [r for r in rows if not (r["seed"] == seed and r["method"] in methods)] + new
            rows.sort(key=lambda r: (r["seed"], list(RUNS).index(r["method"])))
            args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
