"""Does layer-wise learning-rate decay improve ``auto``'s fine-tune recipe? Measured, not assumed.

The same recipe (AdamW, warm-up + cosine, label smoothing 0.1, EMA of weights, the same number of
optimizer steps) with one learning rate for every layer (``fine-tune``) and with a geometric decay
from ``ratio``·lr at the shallowest layer group to lr at the deepest (``discriminative``, the
layer-wise decay of ULMFiT / BEiT). Fashion-MNIST labelled subsets as in ``bench_accuracy.py``;
the epoch is chosen on validation, test accuracy is computed afterwards.

Writes ``benchmarks/results/layer_decay.json`` and regenerates the README table from it.

Usage: python benchmarks/bench_layer_decay.py [--per-class 10,100] [--seeds 0] [--size 128]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from transferkit.api import evaluate, make_data, train_classifier
from transferkit.auto.recipes import DEFAULT_RECIPES
from transferkit.auto.run import recipe_config
from transferkit.backbones import create_backbone
from transferkit.data.fashion_mnist import CLASSES, labelled_split
from transferkit.engine.config import TrainConfig

RESULTS = Path(__file__).parent / "results" / "layer_decay.json"


def quiet(*_):
    pass


VARIANTS = {
    "one rate (auto's fine-tune)": ("fine-tune", {}),
    "layer-wise decay 0.1": ("discriminative", {"ratio": 0.1}),
}


def run(per_class: int, seed: int, size: int) -> list[dict]:
    train, val, test = labelled_split(per_class, seed)
    recipe = next(r for r in DEFAULT_RECIPES if r.name == "fine-tune")
    rows = []
    for method, (strategy, options) in VARIANTS.items():
        torch.manual_seed(seed)
        backbone = create_backbone("efficientnet_lite0")
        bound = make_data(train, val, CLASSES, backbone.data_config, "light", test=test, image_size=size)
        config = recipe_config(recipe, TrainConfig(seed=seed, progress=False), len(train))
        started = time.perf_counter()
        unscored = dataclasses.replace(bound, test=None)  # scored below, once
        result = train_classifier(unscored, backbone, strategy, config, None, strategy_options=options, log=quiet)
        seconds = time.perf_counter() - started
        accuracy = evaluate(result.model, bound.test, config).accuracy
        row = {"per_class": per_class, "seed": seed, "method": method, "input_size": size, "epochs": config.epochs}
        row |= {"val_accuracy": round(result.metrics.accuracy, 4), "test_accuracy": round(accuracy, 4)}
        rows.append(row | {"wall_seconds": round(seconds, 1)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", default="10,100")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    rows = [
        row
        for pc in args.per_class.split(",")
        for s in args.seeds.split(",")
        for row in run(int(pc), int(s), args.size)
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=1))
    from tables import update_readme

    update_readme()


if __name__ == "__main__":
    main()
