"""compare: every strategy beside the classical baselines, with paired margins on the same images."""

import json

import pytest
import torch

from transferkit.api import load_data
from transferkit.backbones import create_backbone
from transferkit.compare import _add_margins, compare_strategies, format_table

from .conftest import write_class_images
from .engine.helpers import config, quiet


def _flags(*bits):
    return {"val": torch.tensor(bits, dtype=torch.bool)}


def test_margins_are_paired_against_the_best_classical_baseline_by_hand():
    rows = [
        {"strategy": "sklearn-pixels-svm", "val_accuracy": 3 / 6, "val_macro_f1": 0.3},
        {"strategy": "sklearn-hog-svm", "val_accuracy": 3 / 6, "val_macro_f1": 0.4},  # tie broken by macro F1
        {"strategy": "fine-tune", "val_accuracy": 5 / 6, "val_macro_f1": 0.8},
    ]
    right = {
        "sklearn-pixels-svm": _flags(1, 1, 1, 0, 0, 0),
        "sklearn-hog-svm": _flags(1, 0, 0, 1, 0, 1),
        "fine-tune": _flags(1, 1, 1, 1, 0, 1),
    }
    _add_margins(rows, right)
    assert "vs_classical" not in rows[0] and "vs_classical" not in rows[1]
    # d = fine-tune - hog = (0, 1, 1, 0, 0, 0): mean 1/3; sample std sqrt((4·1/9 + 2·4/9) / 5) = 0.516398; / sqrt(6)
    # = 0.210819
    # McNemar: 2 wins, 0 losses → two-sided binomial p = 2 · (1/2)² = 0.5
    assert rows[2]["vs_classical"] == {
        "baseline": "sklearn-hog-svm",
        "val": {"points": 33.3333, "se": 21.0819, "images": 6, "wins": 2, "losses": 0, "mcnemar_p": 0.5},
    }
    table = format_table([{**r, "test_accuracy": None, "best_epoch": 1, "wall_seconds": 1.0} for r in rows])
    assert "+33.3 ± 21.1" in table
    assert (
        "on validation: fine-tune (the best transfer strategy) is ahead of sklearn-hog-svm (the best classical "
        "baseline) by +33.3 points on 6 validation images (right on 2 where sklearn-hog-svm is wrong, wrong on 0 "
        "where it is right): within validation noise (McNemar's exact p = 0.5)"
    ) in table


@pytest.fixture
def split_folder(tmp_path):
    for split, seed, n in (("train", 1, 8), ("val", 2, 4), ("test", 3, 5)):
        write_class_images(tmp_path / "d" / split, per_class=n, seed=seed)
    return tmp_path / "d"


def test_compare_scores_every_strategy_on_the_same_val_and_test_images(split_folder, tmp_path):
    data = load_data(split_folder, create_backbone("resnet18", weights=None).data_config, "none", image_size=32)
    rows = compare_strategies(data, "resnet18", ["feature-extraction"], config(epochs=1), None, tmp_path / "c", quiet)
    classical = {r["strategy"]: r for r in rows if "vs_classical" not in r}
    transfer = next(r for r in rows if "vs_classical" in r)
    vs = transfer["vs_classical"]
    for split, images in (("val", 12), ("test", 15)):
        cell, key = vs[split], f"{split}_accuracy" if split == "test" else "val_accuracy"
        assert cell["images"] == images
        # identities: the margin is the difference of the two accuracies, and (wins - losses) / images
        assert cell["points"] == pytest.approx(100 * (transfer[key] - classical[vs["baseline"]][key]), abs=0.02)
        assert cell["points"] == pytest.approx(100 * (cell["wins"] - cell["losses"]) / images, abs=0.01)
        assert 0 < cell["mcnemar_p"] <= 1
    assert json.loads((tmp_path / "c" / "compare.json").read_text())[-1]["vs_classical"] == vs
    report = (tmp_path / "c" / "report.html").read_text()
    assert "vs classical (test)" in report and "on test (reported, never used to choose)" in report
