"""Accuracy against what users try first: Fashion-MNIST with 10 and 100 labelled images per class.

Per labelled-subset seed: the labelled images and 30/class validation images are drawn from the
official training split; the same 2,000 images of the official test split score every row.
``transferkit``'s ``auto`` runs with its default recipes and time budget, and every recipe it
tried is a row of its own (the classical baselines pixels+SVM and HOG+SVM, multi-depth frozen
features, partial fine-tuning, full fine-tuning, LP-FT, the ensemble of the best two), beside
the model ``auto`` selected and the same network trained from scratch with the fine-tuning
recipe. Selection uses the validation images only; test accuracy is computed afterwards, for
this table.

Writes ``benchmarks/results/accuracy.json`` (a list of ``{"per_class", "seed", "method",
"test_accuracy", "wall_seconds", ...}``) and regenerates the README table from it.

A recipe that ``auto`` skipped for lack of budget has no score in its row; ``--fill-skipped``
measures each such recipe afterwards, outside the budget, at its smallest input size, and marks it
so in the table (``auto``'s own result is unchanged by it).

Usage: python benchmarks/bench_accuracy.py [--per-class 10,100] [--seeds 0,1,2] [--time-budget 10m]
       python benchmarks/bench_accuracy.py --fill-skipped
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from transferkit.api import evaluate, make_data, rebind, train_classifier
from transferkit.auto import fit_auto
from transferkit.auto.recipes import DEFAULT_RECIPES, FINE_TUNE
from transferkit.auto.run import recipe_config, run_recipe
from transferkit.backbones import create_backbone
from transferkit.data.fashion_mnist import CLASSES, labelled_split
from transferkit.engine.config import TrainConfig

RESULTS = Path(__file__).parent / "results" / "accuracy.json"
SCRATCH_SIZE = 96


def method_name(recipe: str) -> str:
    return "ensemble" if recipe.startswith("ensemble(") else recipe


def subset(per_class: int, seed: int, args: argparse.Namespace):
    """(pretrained backbone, data) of one labelled subset: its train/val images and the shared test images."""
    train, val, test = labelled_split(per_class, seed)
    backbone = create_backbone(args.backbone)
    return backbone, make_data(train, val, CLASSES, backbone.data_config, preset="light", test=test)


def run_seed(per_class: int, seed: int, args: argparse.Namespace) -> list[dict]:
    backbone, data = subset(per_class, seed, args)
    config = TrainConfig(seed=seed, progress=False)
    started = time.perf_counter()
    result = fit_auto(data, backbone, config, "imagenet", args.out / f"{per_class}-{seed}", args.time_budget)
    auto_seconds = time.perf_counter() - started
    rows = []
    for trial in result.extra["trials"]:
        base = {"per_class": per_class, "seed": seed, "method": method_name(trial.name)}
        if trial.status != "ok":
            rows.append({**base, "test_accuracy": None, "wall_seconds": None, "note": trial.note})
            continue
        accuracy = evaluate(trial.model, rebind(data, trial.model.data_config).test, config).accuracy
        rows.append(
            {
                **base,
                "test_accuracy": round(accuracy, 4),
                "wall_seconds": round(trial.seconds, 1),
                "val_accuracy": round(trial.val_accuracy, 4),
                "input_size": trial.size,
                "recipe": trial.name,
            }
        )
    winner = next(r for r in rows if r.get("recipe") == result.extra["winner"])
    rows.append({**winner, "method": "auto", "wall_seconds": round(auto_seconds, 1)})
    rows.append(scratch_row(data, per_class, seed, args))
    for row in rows:
        print(f"{per_class}/class seed {seed} {row['method']:12s} test {row['test_accuracy']} {row['wall_seconds']} s")
    return rows


def scratch_row(data, per_class: int, seed: int, args: argparse.Namespace) -> dict:
    """The same network from random initialisation with the fine-tuning recipe, at the size auto would afford."""
    torch.manual_seed(seed)
    backbone = create_backbone(args.backbone, weights=None)
    bound = rebind(data, backbone.data_config, SCRATCH_SIZE)
    config = TrainConfig(**{**FINE_TUNE, "epochs": 15, "seed": seed, "progress": False})
    started = time.perf_counter()
    unscored = dataclasses.replace(bound, test=None)  # scored below, once
    result = train_classifier(unscored, backbone, "fine-tune", config, None, log=lambda *_: None)
    seconds = time.perf_counter() - started
    accuracy = evaluate(result.model, bound.test, config).accuracy
    return {
        "per_class": per_class,
        "seed": seed,
        "method": "from scratch",
        "test_accuracy": round(accuracy, 4),
        "wall_seconds": round(seconds, 1),
        "input_size": SCRATCH_SIZE,
    }


def fill_skipped(rows: list[dict], args: argparse.Namespace) -> list[dict]:
    """Score, outside auto's budget and at its smallest size, each recipe that auto skipped."""
    recipes = {r.name: r for r in DEFAULT_RECIPES}
    for row in rows:
        recipe = recipes.get(row["method"])
        if row.get("test_accuracy") is not None or recipe is None or not recipe.sizes:
            continue
        backbone, data = subset(row["per_class"], row["seed"], args)
        cfg = recipe_config(recipe, TrainConfig(seed=row["seed"], progress=False), len(data.train))
        folder = args.out / f"{row['per_class']}-{row['seed']}-outside-budget" / recipe.name
        unscored = dataclasses.replace(data, test=None)
        trial = run_recipe(recipe, recipe.sizes[-1], 0.0, unscored, backbone, "imagenet", cfg, folder, print)
        accuracy = evaluate(trial.model, rebind(data, trial.model.data_config).test, cfg).accuracy
        row.update(test_accuracy=round(accuracy, 4), wall_seconds=round(trial.seconds, 1), input_size=trial.size)
        row.update(val_accuracy=round(trial.val_accuracy, 4), outside_budget=True)
        print(f"{row['per_class']}/class seed {row['seed']} {row['method']} outside the budget: test {accuracy:.4f}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", default="10,100")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--time-budget", default="10m")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--out", type=Path, default=Path("bench-out/accuracy"))
    parser.add_argument("--fill-skipped", action="store_true", help="only score what auto skipped, then exit")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    if args.fill_skipped:
        RESULTS.write_text(json.dumps(fill_skipped(rows, args), indent=1))
        return _tables()
    for per_class in map(int, args.per_class.split(",")):
        for seed in map(int, args.seeds.split(",")):
            new = run_seed(per_class, seed, args)
            rows = [r for r in rows if (r["per_class"], r["seed"]) != (per_class, seed)] + new
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(rows, indent=1))  # after every seed: a stopped run keeps what it measured
    _tables()


def _tables() -> None:
    from tables import update_readme

    update_readme()


if __name__ == "__main__":
    main()
