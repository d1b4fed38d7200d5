"""--strategy auto: budgeted recipes, selection on validation only, the winner saved like any run."""

import json
from html import escape

import pytest
import torch

from transferkit.api import make_data, train_classifier
from transferkit.auto import Recipe, fit_auto, parse_budget
from transferkit.auto.recipes import DEFAULT_RECIPES
from transferkit.data import TensorImageDataset
from transferkit.engine.ensemble import EnsembleModel
from transferkit.errors import ConfigError

from ..engine.helpers import config, dying_log, quiet, tiny_data

TINY_RECIPES = (
    Recipe("pixels-svm", "sklearn-pixels-svm"),
    Recipe("features", "sklearn-logreg", layers="auto"),
    Recipe("partial", "partial", sizes=(16,), options={"groups_fraction": 0.5}, config={"epochs": 2, "lr": 3e-3}),
    Recipe("lp-ft", "lp-ft", sizes=(16,), options={"probe_epochs": 1}, config={"epochs": 2, "lr": 3e-3}),
)


class Untouchable(TensorImageDataset):
    """A test split that fails the run if anything reads it."""

    def __getitem__(self, index):
        raise AssertionError("the test split was read during selection")

    def raw(self, index):
        raise AssertionError("the test split was read during selection")


def _data_with_untouchable_test(n_per_class=10):
    backbone, data = tiny_data(n_per_class=n_per_class)
    test = Untouchable(torch.rand(6, 3, 16, 16), [0, 1, 2, 0, 1, 2])
    return backbone, make_data(data.train.base, data.val.base, data.classes, backbone.data_config, test=test)


def test_auto_selects_on_validation_without_reading_the_test_split(tmp_path):
    backbone, data = _data_with_untouchable_test()
    result = fit_auto(data, backbone, config(), None, tmp_path, 300, TINY_RECIPES, log=quiet)
    rows = json.loads((tmp_path / "auto.json").read_text())["trials"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["recipe"] for r in ok} >= {"pixels-svm", "features", "partial", "lp-ft"}
    assert any(r["recipe"].startswith("ensemble(") for r in ok)
    best = max(ok, key=lambda r: (r["val_accuracy"], -r["val_loss"]))
    assert result.extra["winner"] == best["recipe"]
    assert (tmp_path / "best.pt").is_file()


def test_the_ensemble_is_the_average_of_the_two_best(tmp_path):
    backbone, data = tiny_data(n_per_class=10)
    ranked = (Recipe("pixels-svm", "sklearn-pixels-svm"), Recipe("features", "sklearn-logreg"))
    fit_auto(data, backbone, config(), None, tmp_path, 300, ranked, log=quiet)
    rows = json.loads((tmp_path / "auto.json").read_text())["trials"]
    assert [r["recipe"] for r in rows] == ["pixels-svm", "features", "ensemble(pixels-svm + features)"] or [
        r["recipe"] for r in rows
    ] == ["pixels-svm", "features", "ensemble(features + pixels-svm)"]


def test_winner_is_scored_on_the_test_split_once_after_selection(tmp_path):
    backbone, data = tiny_data(n_per_class=10)
    test = TensorImageDataset(data.val.base.images.clone(), data.val.base.labels)
    data = make_data(data.train.base, data.val.base, data.classes, backbone.data_config, test=test)
    result = train_classifier(data, backbone, "auto", config(), out=tmp_path, log=quiet, time_budget=60)
    saved = json.loads((tmp_path / "best_metrics.json").read_text())
    assert saved["test"]["accuracy"] == pytest.approx(result.test_metrics.accuracy)
    html = (tmp_path / "report.html").read_text()
    assert "What auto tried" in html and "vs selected (points ± SE)" in html
    assert all(escape(line) in html for line in result.extra["selection"])
    tried = sum(1 for row in result.extra["auto"] if row["status"] == "ok")  # an ensemble counts as a candidate
    assert f"auto selected {escape(result.extra['winner'])} among {tried} candidates" in html
    assert "Best epoch" not in html and "seconds, all candidates" in html  # no single run's epochs for auto


def test_a_budget_too_small_for_any_recipe_names_the_minimum():
    backbone, data = tiny_data()
    with pytest.raises(ConfigError, match=r"too small for any recipe.*at least \d+"):
        fit_auto(data, backbone, config(), None, None, 0.001, TINY_RECIPES, log=quiet)


def test_a_class_with_one_image_skips_what_cannot_be_cross_validated_and_says_so():
    backbone, data = tiny_data(n_per_class=6)
    images = torch.cat([data.train.base.images, torch.rand(1, 3, 16, 16)])
    labels = [*data.train.base.labels, 3]
    val_images = torch.cat([data.val.base.images, torch.rand(1, 3, 16, 16)])
    val_labels = [*data.val.base.labels, 3]
    data = make_data(
        TensorImageDataset(images, labels), TensorImageDataset(val_images, val_labels),
        ["c0", "c1", "c2", "c3"], backbone.data_config,
    )  # fmt: skip
    lines = []
    result = fit_auto(data, backbone, config(), None, None, 300, TINY_RECIPES, log=lines.append)
    rows = {r["recipe"]: r for r in result.extra["auto"]}
    assert rows["pixels-svm"]["status"] == "skipped" and "at least 2 images per class" in rows["pixels-svm"]["note"]
    assert rows["features"]["status"] == "ok"
    assert any("nothing to cross-validate" in line for line in lines)


def test_budget_strings():
    assert parse_budget("90") == 90 and parse_budget("10m") == 600 and parse_budget("1.5h") == 5400
    with pytest.raises(ConfigError, match="e.g. 600 or 10m"):
        parse_budget("ten minutes")


def test_default_recipes_include_the_classical_baselines_and_the_issue_rows():
    names = [r.name for r in DEFAULT_RECIPES]
    assert names[:2] == ["pixels-svm", "hog-svm"]
    assert {"features", "partial", "lp-ft", "fine-tune"} <= set(names)


def test_ensemble_members_keep_their_own_preprocessing(tmp_path):
    backbone, data = tiny_data(n_per_class=10)
    result = fit_auto(
        data, backbone, config(), None, None, 300, (Recipe("hog-svm", "sklearn-hog-svm"), *TINY_RECIPES[:2]), log=quiet
    )
    rows = {r["recipe"]: r for r in result.extra["auto"]}
    (name,) = [n for n in rows if n.startswith("ensemble(")]
    members = name.removeprefix("ensemble(").removesuffix(")").split(" + ")
    assert rows["hog-svm"]["input_size"] == 64 and rows["features"]["input_size"] == 16
    assert rows[name]["input_size"] == max(rows[m]["input_size"] for m in members)
    if result.extra["winner"].startswith("ensemble("):
        assert isinstance(result.model, EnsembleModel)


def test_a_killed_auto_run_resumes_to_the_same_result(tmp_path):
    torch.manual_seed(0)
    backbone, data = tiny_data(n_per_class=10)
    full = fit_auto(data, backbone, config(), None, tmp_path / "full", 300, TINY_RECIPES, log=quiet)

    with pytest.raises(KeyboardInterrupt):  # the second epoch of the first trained recipe (partial)
        fit_auto(data, backbone, config(), None, tmp_path / "killed", 300, TINY_RECIPES, log=dying_log(2))
    state = json.loads((tmp_path / "killed" / "auto_state.json").read_text())["recipes"]
    assert state["features"]["status"] == "ok" and state["partial"]["status"] == "running"
    lines = []
    resumed = fit_auto(
        data, backbone, config(), None, tmp_path / "killed", 300, TINY_RECIPES, lines.append, resume=True
    )
    assert any("reloaded" in line for line in lines) and any("resuming" in line for line in lines)
    rows = lambda r: [(t["recipe"], t["status"], t["val_accuracy"], t["val_loss"]) for t in r.extra["auto"]]  # noqa: E731
    assert rows(resumed) == rows(full)
    assert resumed.extra["winner"] == full.extra["winner"]
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_resuming_auto_without_a_state_is_a_clear_error(tmp_path):
    backbone, data = tiny_data()
    with pytest.raises(ConfigError, match="Nothing to resume"):
        fit_auto(data, backbone, config(), None, tmp_path, 300, TINY_RECIPES, log=quiet, resume=True)


def test_unused_budget_goes_to_the_later_recipes():
    from transferkit.auto.run import allowance

    recipes = (
        Recipe("a", "partial", share=0.3),
        Recipe("b", "lp-ft", share=0.35),
        Recipe("c", "fine-tune", share=0.25),
    )
    # 600 s: "a" has a share of 180 s, but 600 - (210 + 150) = 240 s are free of the later shares
    assert allowance(recipes, 0, 600, 600) == 240
    assert allowance(recipes, 0, 600, 400) == 180  # never less than its share while time remains
    assert allowance(recipes, 1, 600, 400) == 250  # 400 - 150 reserved for "c"
    assert allowance(recipes, 2, 600, 200) == 200  # the last one takes what is left, beyond its 150
    assert allowance(recipes, 2, 600, 100) == 100


def test_auto_tries_self_training_only_when_unlabelled_images_are_given(tmp_path, monkeypatch):
    import transferkit.auto as auto
    from transferkit.auto.recipes import SEMI_RECIPE, SEMI_RECIPES, STUDENT_RECIPE

    seen = []

    def recording(data, backbone, config, weights, out, budget, recipes, **kwargs):
        seen.append([r.name for r in recipes])
        raise StopIteration  # the recipes are all this test needs

    monkeypatch.setattr(auto, "fit_auto", recording)
    backbone, data = tiny_data()
    for pool in (None, TensorImageDataset(torch.rand(5, 3, 20, 12), [-1] * 5)):
        data.unlabeled = pool
        with pytest.raises(StopIteration):
            train_classifier(data, backbone, "auto", config(), log=quiet)
    assert seen[0] == ["pixels-svm", "hog-svm", "features", "partial", "lp-ft", "fine-tune"]
    # self-training, a frozen-feature recipe, before the fine-tuning ones; the (fine-tuned) student last
    assert seen[1] == ["pixels-svm", "hog-svm", "features", "self-training", "partial", "lp-ft", "fine-tune",
                       "self-training-student"]  # fmt: skip
    assert SEMI_RECIPES == (SEMI_RECIPE, STUDENT_RECIPE)
    assert not SEMI_RECIPE.trained  # frozen features: never budgeted as fine-tuning
    assert STUDENT_RECIPE.trained  # the student fine-tunes its deepest groups


def test_self_training_keeps_its_share_of_the_budget_whatever_the_fine_tuning_recipes_take():
    from transferkit.auto.recipes import SEMI_RECIPE, recipes_for
    from transferkit.auto.run import allowance

    recipes = recipes_for(unlabeled=True)
    index = recipes.index(SEMI_RECIPE)
    assert not any(r.trained for r in recipes[:index])  # only the cheap frozen recipes can spend before it
    # 600 s, none spent: the trained recipes after it reserve (0.3 + 0.35 + 0.25 + 0.5) · 600 = 840 s > 600 s,
    # so it gets its own share, 0.3 · 600 = 180 s (it was last before, with what fine-tuning had left)
    assert allowance(recipes, index, 600, 600) == pytest.approx(180)


def test_self_training_through_auto_uses_the_pool_and_is_selected_on_validation(tmp_path):
    from transferkit.auto.recipes import SEMI_RECIPES

    backbone, data = _data_with_untouchable_test()
    data.unlabeled = TensorImageDataset(torch.rand(12, 3, 16, 16), [-1] * 12)
    recipes = (Recipe("pixels-svm", "sklearn-pixels-svm"), *SEMI_RECIPES)
    fit_auto(data, backbone, config(), None, tmp_path, 300, recipes, log=quiet)
    rows = {r["recipe"]: r for r in json.loads((tmp_path / "auto.json").read_text())["trials"]}
    for name in ("self-training", "self-training-student"):
        assert rows[name]["status"] == "ok", rows[name]


class FixedProbe:
    """A cost probe with fixed per-image seconds: forward 1 ms, a training step 10 ms, loading ``load``."""

    def __init__(self, load: float = 0.0):
        self.seconds = load

    def forward(self, size):
        return 0.001

    def train(self, size, groups=-1):
        return 0.010

    def load(self, dataset, size):
        return self.seconds


def test_the_teachers_and_the_students_estimates_count_every_pass_by_hand():
    from transferkit.auto.recipes import SEMI_RECIPE, STUDENT_RECIPE
    from transferkit.auto.run import EPOCH_OVERHEAD, RECIPE_OVERHEAD, estimate

    backbone, data = tiny_data(n_per_class=8)  # 24 train, 12 val images
    data.unlabeled = TensorImageDataset(torch.rand(1000, 3, 16, 16), [-1] * 1000)
    cfg = config()
    assert cfg.cache_views == 1 and SEMI_RECIPE.layers == "auto"
    teacher = estimate(SEMI_RECIPE, None, FixedProbe(), data, cfg)
    # every group of the 24 training images once (--layers auto), then their cached view, the 12 validation
    # images, and a plain and a strong view of the 24 + 1000 images: each a forward and a HOG (2 ms); four k-NN
    # graphs of the 1024 images (round 1's and rounds 2-4's on the hidden layer): 1e-8 s a pair
    passes = 24 + 24 + 12 + 2 * (24 + 1000)
    assert teacher == pytest.approx(RECIPE_OVERHEAD + passes * (0.001 + 0.002) + 4 * 1e-8 * 1024**2 + 60.0)
    images = 24 + 800  # + 0.8 × 1000 pseudo-labelled
    bottom = (images + 12) * 0.0005  # the frozen bottom (half a forward) of every image once, as `partial`
    student = RECIPE_OVERHEAD + bottom + 3 * (EPOCH_OVERHEAD + images * 0.010 + 12 * 0.0005)  # 3 epochs
    assert estimate(STUDENT_RECIPE, None, FixedProbe(), data, cfg) == pytest.approx(teacher + student)


def test_on_a_gpu_the_students_estimate_counts_a_probe_pass_and_six_epochs_of_every_layer_by_hand(monkeypatch):
    import transferkit.auto.run as run
    from transferkit.auto.recipes import SEMI_RECIPE, STUDENT_RECIPE
    from transferkit.auto.run import EPOCH_OVERHEAD, RECIPE_OVERHEAD, estimate

    backbone, data = tiny_data(n_per_class=8)  # 24 train, 12 val images
    data.unlabeled = TensorImageDataset(torch.rand(1000, 3, 16, 16), [-1] * 1000)
    monkeypatch.setattr(run, "trains_on_gpu", lambda cfg: True)
    teacher = estimate(SEMI_RECIPE, None, FixedProbe(), data, config())
    images = 24 + 1000  # the whole pool pseudo-labelled
    # the probe's features of every image once (a forward), 7 validations of 12 images, then 6 epochs of steps
    student = RECIPE_OVERHEAD + 7 * EPOCH_OVERHEAD + (images + 7 * 12) * 0.001 + 6 * images * 0.010
    assert estimate(STUDENT_RECIPE, None, FixedProbe(), data, config()) == pytest.approx(teacher + student)


def test_fixmatch_is_tried_only_on_a_gpu_and_its_estimate_counts_every_step_by_hand():
    from transferkit.auto.recipes import FIXMATCH_RECIPE, recipes_for
    from transferkit.auto.run import EPOCH_OVERHEAD, RECIPE_OVERHEAD, estimate

    assert FIXMATCH_RECIPE not in recipes_for(unlabeled=True) and FIXMATCH_RECIPE not in recipes_for(False, gpu=True)
    assert recipes_for(unlabeled=True, gpu=True)[-1] == FIXMATCH_RECIPE and FIXMATCH_RECIPE.trained

    backbone, data = tiny_data(n_per_class=8)  # 24 train, 12 val images
    data.unlabeled = TensorImageDataset(torch.rand(5000, 3, 16, 16), [-1] * 5000)
    # an epoch: max(⌈24/64⌉, ⌈5000/448⌉ = 12, 50 min_steps) = 50 steps of 64 + 2·448 training images and
    # 64 + 448 loaded; 11 such epochs after the probe (24 + 12 images' features and a 5 s solve), each validated
    step = (64 + 896) * 0.010 + (64 + 448) * 0.002
    by_hand = RECIPE_OVERHEAD + 12 * EPOCH_OVERHEAD + (36 * 0.001 + 5.0) + 11 * (50 * step + 12 * 0.001)
    assert estimate(FIXMATCH_RECIPE, 96, FixedProbe(load=0.002), data, config()) == pytest.approx(by_hand)


def test_fixmatch_through_auto_uses_the_pool_and_is_selected_on_validation(tmp_path):
    from transferkit.semi import FIXMATCH

    backbone, data = _data_with_untouchable_test()
    data.unlabeled = TensorImageDataset(torch.rand(12, 3, 16, 16), [-1] * 12)
    small = {"epochs": 2, "min_steps": 2, "batch_size": 8, "mu": 2}  # the estimate reads these too
    recipes = (Recipe("pixels-svm", "sklearn-pixels-svm"), Recipe(FIXMATCH, FIXMATCH, options=small))
    lines: list[str] = []
    fit_auto(data, backbone, config(), None, tmp_path, 300, recipes, log=lines.append)
    rows = {r["recipe"]: r for r in json.loads((tmp_path / "auto.json").read_text())["trials"]}
    assert rows[FIXMATCH]["status"] == "ok", rows[FIXMATCH]
    assert any("12 unlabelled images (τ=0.95, μ=2" in line for line in lines)


def test_a_strategy_that_would_ignore_the_unlabelled_images_says_so():
    backbone, data = tiny_data()
    data.unlabeled = TensorImageDataset(torch.rand(3, 3, 16, 16), [-1] * 3)
    with pytest.raises(ConfigError, match="would ignore the 3 unlabelled images"):
        train_classifier(data, backbone, "partial", config(), log=quiet)
