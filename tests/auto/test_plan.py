"""--plan: a new auto run makes an earlier run's decisions (input sizes, skips) instead of timing this machine."""

import json

import pytest

from transferkit.auto import Recipe, fit_auto
from transferkit.errors import ConfigError

from ..engine.helpers import config, quiet, tiny_data

RECIPES = (
    Recipe("pixels-svm", "sklearn-pixels-svm"),
    Recipe("partial", "partial", sizes=(16,), options={"groups_fraction": 0.5}, config={"epochs": 1, "lr": 3e-3}),
    Recipe("lp-ft", "lp-ft", sizes=(16,), options={"probe_epochs": 1}, config={"epochs": 2, "lr": 3e-3}),
)


def _plan(folder, recipes):
    folder.mkdir()
    (folder / "auto_state.json").write_text(json.dumps({"recipes": recipes}))
    return folder


def test_the_plan_sets_sizes_and_skips_and_overrides_the_budget(tmp_path):
    backbone, data = tiny_data(n_per_class=6)
    plan = _plan(tmp_path / "earlier", {
        "pixels-svm": {"status": "ok", "size": None, "estimate": 3.0, "seconds": 1.0},
        "partial": {"status": "ok", "size": 24, "estimate": 9.0, "seconds": 5.0},  # not one of the recipe's sizes
        "lp-ft": {"status": "skipped", "estimate": 99.0, "note": "estimated 99 s > 10 s"},
        "old-recipe": {"status": "ok", "size": 16, "estimate": 1.0, "seconds": 1.0},
    })  # fmt: skip
    lines = []
    # a 1-second budget: without the plan every network recipe would be skipped
    result = fit_auto(data, backbone, config(), None, tmp_path / "run", 1, RECIPES, lines.append, plan=plan)
    trials = {t.name: t for t in result.extra["trials"]}
    assert trials["partial"].status == "ok" and trials["partial"].size == 24
    assert trials["lp-ft"].status == "skipped" and "as in the plan (estimated 99 s > 10 s)" in trials["lp-ft"].note
    assert trials["pixels-svm"].status == "ok"
    assert any("in the plan" in line and "not tried here: old-recipe" in line for line in lines)
    state = json.loads((tmp_path / "run" / "auto_state.json").read_text())["recipes"]
    assert state["partial"]["size"] == 24 and state["lp-ft"]["status"] == "skipped"  # the new run's own ledger


def test_recipes_missing_from_the_plan_are_timed_here(tmp_path):
    backbone, data = tiny_data(n_per_class=6)
    plan = _plan(tmp_path / "earlier", {"pixels-svm": {"status": "ok", "size": None, "estimate": 3.0}})
    lines = []
    result = fit_auto(data, backbone, config(), None, None, 300, RECIPES[:2], lines.append, plan=plan)
    assert [t.status for t in result.extra["trials"][:2]] == ["ok", "ok"]
    assert any("not in the plan" in line and "partial" in line for line in lines)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no auto_state.json there"),
        ("{not json", "not the auto_state.json of an auto run"),
        ('{"recipes": {"partial": {"size": 24}}}', "not the auto_state.json of an auto run (KeyError"),
        ('{"recipes": {"partial": {"status": "ok", "size": -3}}}', "positive integers; got {'partial': -3}"),
    ],
)
def test_a_bad_plan_names_the_file_and_what_is_wrong(tmp_path, content, message):
    backbone, data = tiny_data(n_per_class=4)
    (tmp_path / "earlier").mkdir()
    if content is not None:
        (tmp_path / "earlier" / "auto_state.json").write_text(content)
    with pytest.raises(ConfigError, match="earlier") as raised:
        fit_auto(data, backbone, config(), None, None, 60, RECIPES, quiet, plan=tmp_path / "earlier")
    assert message in str(raised.value)


def test_plan_and_image_size_conflict(tmp_path):
    backbone, data = tiny_data(n_per_class=4)
    with pytest.raises(ConfigError, match="leave out --image-size 32"):
        fit_auto(data, backbone, config(), None, None, 60, RECIPES, quiet, image_size=32, plan=tmp_path)
