"""auto's selection margins: paired differences on the same validation images, checked by hand."""

import json
import math

import pytest
import torch

from transferkit.auto import Recipe, fit_auto
from transferkit.auto.selection import explain, paired_margin, versus

from ..engine.helpers import config, tiny_data


def test_the_paired_margin_its_standard_error_and_mcnemars_exact_p_by_hand():
    # d = selected - other = [0, 1, 0, 0, 1]: mean 0.4; sample variance (3·0.16 + 2·0.36) / 4 = 0.3;
    # SE = sqrt(0.3 / 5) = 0.24495; 2 wins, 0 losses: p = 2 · (1/2)² = 0.5
    selected = torch.tensor([1, 1, 1, 0, 1], dtype=torch.bool)
    other = torch.tensor([1, 0, 1, 0, 0], dtype=torch.bool)
    margin = paired_margin(selected, other)
    assert margin.points == pytest.approx(40.0) and margin.se == pytest.approx(24.495, abs=1e-3)
    assert (margin.images, margin.wins, margin.losses) == (5, 2, 0)
    assert margin.p_value == pytest.approx(0.5) and not margin.clear
    assert margin.short() == "-40.0 ± 24.5"  # the other one's accuracy minus the selected one's


@pytest.mark.parametrize(
    "wins, losses, p, clear",
    [
        (10, 0, 2 / 2**10, True),  # 0.00195
        (9, 1, 2 * 11 / 2**10, True),  # P(X >= 9 | 10) = (C(10,9) + C(10,10)) / 1024 = 11/1024; two-sided 0.0215
        (5, 1, 2 * 7 / 2**6, False),  # (6 + 1) / 64, two-sided 0.219
        (4, 0, 2 / 2**4, False),  # 0.125, although mean ± 1.96 SE = +4.0 ± 3.9 points excludes zero
    ],
)
def test_mcnemars_exact_test_on_a_hundred_validation_images(wins, losses, p, clear):
    selected = torch.zeros(100, dtype=torch.bool)
    other = torch.zeros(100, dtype=torch.bool)
    selected[:wins] = True
    other[wins : wins + losses] = True
    selected[50:] = other[50:] = True  # images both get right carry no information
    margin = paired_margin(selected, other)
    assert (margin.wins, margin.losses) == (wins, losses)
    assert margin.points == pytest.approx(wins - losses) and margin.p_value == pytest.approx(p)
    assert margin.clear is clear


def test_two_candidates_right_on_the_same_images_are_not_apart():
    same = torch.tensor([1, 0, 1, 1], dtype=torch.bool)
    margin = paired_margin(same, same.clone())
    assert margin.points == 0 and margin.se == 0 and margin.p_value == 1 and not margin.clear
    assert margin.short() == "+0.0 ± 0.0"
    (line,) = explain("a", ["a", "b"], set(), {"b": margin})
    assert line == (
        "a and b (the runner-up) are right on the same 4 validation images: validation cannot tell them apart."
    )


def test_mismatched_flags_are_a_clear_error():
    with pytest.raises(ValueError, match=r"one flag per validation image; got shapes \(3,\), \(4,\)"):
        paired_margin(torch.ones(3, dtype=torch.bool), torch.ones(4, dtype=torch.bool))


def test_the_explanation_names_the_runner_up_and_the_best_classical_baseline():
    noise = paired_margin(torch.tensor([1, 1, 1, 0, 1]).bool(), torch.tensor([1, 0, 1, 0, 0]).bool())
    clear = paired_margin(torch.ones(100).bool(), torch.arange(100) >= 10)
    margins = {"lp-ft": noise, "partial": noise, "hog-svm": clear, "pixels-svm": clear}
    lines = explain("fine-tune", ["fine-tune", "lp-ft", "hog-svm", "partial", "pixels-svm"], {"hog-svm", "pixels-svm"},
                    margins)  # fmt: skip
    assert lines == [
        "fine-tune kept over lp-ft (the runner-up) by +40.0 points on 5 validation images (right on 2 where lp-ft "
        "is wrong, wrong on 0 where it is right): within validation noise (McNemar's exact p = 0.5): either may "
        "do better on new images; more validation images would tell them apart.",
        "fine-tune kept over hog-svm (the best classical baseline) by +10.0 points on 100 validation images "
        "(right on 10 where hog-svm is wrong, wrong on 0 where it is right): clearly ahead (McNemar's exact "
        "p = 0.00195).",
    ]


def test_a_classical_winner_is_compared_with_the_best_transfer_recipe():
    margin = paired_margin(torch.tensor([1, 1, 0]).bool(), torch.tensor([1, 0, 0]).bool())
    margins = {"ensemble(hog-svm + pixels-svm)": margin, "self-training": margin, "pixels-svm": margin}
    ranked = ["hog-svm", "ensemble(hog-svm + pixels-svm)", "self-training", "pixels-svm"]
    lines = explain("hog-svm", ranked, {"hog-svm", "pixels-svm", "ensemble(hog-svm + pixels-svm)"}, margins)
    assert len(lines) == 3
    assert lines[0] == "hog-svm is a classical baseline: no transfer recipe did better on validation."
    assert lines[1].startswith(
        "hog-svm kept over ensemble(hog-svm + pixels-svm) (the runner-up, a classical baseline) by +33.3 points on 3 "
        "validation images (right on 1 where"
    )
    assert lines[2].startswith("hog-svm kept over self-training (the best transfer recipe) by +33.3 points")


def test_auto_json_and_the_report_carry_each_trials_margin_to_the_selected_one(tmp_path):
    backbone, data = tiny_data(n_per_class=10)
    recipes = (Recipe("pixels-svm", "sklearn-pixels-svm"), Recipe("features", "sklearn-logreg", layers="auto"))
    lines = []
    fit_auto(data, backbone, config(), None, tmp_path, 300, recipes, log=lines.append)
    saved = json.loads((tmp_path / "auto.json").read_text())
    rows = {r["recipe"]: r for r in saved["trials"]}
    winner = rows[saved["winner"]]
    assert winner["val_margin_points"] is None
    for name, row in rows.items():
        if name == saved["winner"]:
            continue
        # the paired mean difference is exactly the difference of the two accuracies
        expected = 100 * (winner["val_accuracy"] - row["val_accuracy"])
        assert row["val_margin_points"] == pytest.approx(expected, abs=0.02), name
        assert row["val_margin_se"] >= 0 and math.isfinite(row["val_margin_se"])
        wins, losses = row["val_wins_losses"]  # images only the winner / only this one gets right
        assert 100 * (wins - losses) / len(data.val) == pytest.approx(row["val_margin_points"], abs=0.02)
        assert 0 < row["val_mcnemar_p"] <= 1
    assert saved["selection"] and all(line.startswith(saved["winner"]) for line in saved["selection"])
    assert all(f"[auto] {line}" in lines for line in saved["selection"])


def test_an_ensemble_of_the_two_svm_baselines_counts_as_a_classical_baseline():
    backbone, data = tiny_data(n_per_class=10)
    recipes = (Recipe("pixels-svm", "sklearn-pixels-svm"), Recipe("hog-svm", "sklearn-hog-svm"))
    result = fit_auto(data, backbone, config(), None, None, 300, recipes, log=lambda line: None)
    winner = result.extra["winner"]
    first = result.extra["selection"][0]
    assert first == f"{winner} is a classical baseline: no transfer recipe did better on validation."


def test_versus_says_behind_when_the_first_one_loses_beyond_noise():
    # 0 wins, 10 losses on 100 images: p = 2 · (1/2)^10 = 2/1024 = 0.00195; margin -10 points
    margin = paired_margin(torch.tensor([False] * 10 + [True] * 90), torch.tensor([True] * 100))
    assert versus("A", "B", margin, "test") == (
        "A is behind B by -10.0 points on 100 test images (right on 0 where B is wrong, wrong on 10 where it is "
        "right): clearly behind (McNemar's exact p = 0.00195)."
    )


def test_the_report_table_leaves_a_skipped_recipe_blank_and_rounds_seconds():
    from transferkit.auto.run import report_table
    from transferkit.auto.selection import Margin

    rows = [
        {"recipe": "features", "status": "ok", "input_size": 224, "val_accuracy": 0.9, "val_loss": 0.3,
         "seconds": 4.84, "note": ""},
        {"recipe": "partial", "status": "skipped", "input_size": None, "val_accuracy": None, "val_loss": None,
         "seconds": 0.0, "note": "estimated 62 s > 29 s"},
    ]  # fmt: skip
    header, cells = report_table(rows, {"features": Margin(2.0, 1.5, 100, 3, 1)})
    assert header[-2:] == ["seconds", "note"]
    assert cells == [
        ["features", "ok", 224, 0.9, "-2.0 ± 1.5", 0.3, "4.8", ""],
        ["partial", "skipped", "", "", "", "", "", "estimated 62 s > 29 s"],
    ]
