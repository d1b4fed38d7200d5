"""``fit --unlabeled``: unlabelled images of other sizes and modes are read like labelled ones; a clear error
without them; the saved model predicts."""

import numpy as np
import tifffile
from PIL import Image
from typer.testing import CliRunner

from transferkit.cli.main import app

from ..conftest import write_class_images

runner = CliRunner()
NET = "--backbone resnet18 --weights none --image-size 32 --precision 32-true --no-progress".split()


def _unlabelled(folder):
    rng = np.random.default_rng(3)
    (folder / "deep" / "er").mkdir(parents=True)
    for i in range(4):
        Image.fromarray((rng.random((24, 20)) * 255).astype(np.uint8), mode="L").save(folder / f"gray{i}.png")
        Image.fromarray((rng.random((40, 40, 3)) * 255).astype(np.uint8)).save(folder / "deep" / "er" / f"rgb{i}.jpg")
    tifffile.imwrite(folder / "sixteen.tif", (rng.random((30, 30)) * 65535).astype(np.uint16))
    return folder


def test_fit_learns_from_unlabelled_images_of_any_size_and_mode(tmp_path):
    data = write_class_images(tmp_path / "data")
    pool = _unlabelled(tmp_path / "pool")
    out = tmp_path / "run"
    args = ["fit", str(data), "--unlabeled", str(pool), "--strategy", "self-training", "--out", str(out), *NET]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Unlabelled images: 9" in result.output
    assert "self-training round 4" in result.output and (out / "best.pt").exists()
    csv = tmp_path / "predictions.csv"
    predicted = runner.invoke(app, ["predict", str(out / "best.pt"), str(data / "a"), "--out", str(csv)])
    assert predicted.exit_code == 0, predicted.output
    assert len(csv.read_text().splitlines()) == 1 + 8  # header + the 8 images of class a


def test_self_training_without_unlabelled_images_says_how_to_give_them(tmp_path):
    data = write_class_images(tmp_path / "data")
    result = runner.invoke(app, ["fit", str(data), "--strategy", "self-training", "--out", str(tmp_path / "r"), *NET])
    assert result.exit_code != 0 and "--unlabeled DIR" in str(result.exception)


def test_fit_trains_a_student_on_the_pseudo_labelled_pool(tmp_path):
    data = write_class_images(tmp_path / "data")
    pool = _unlabelled(tmp_path / "pool")
    out = tmp_path / "run"
    args = ["fit", str(data), "--unlabeled", str(pool), "--strategy", "self-training-student", "--out", str(out)]
    result = runner.invoke(app, [*args, *NET])
    assert result.exit_code == 0, result.output
    assert "Student of self-training (val accuracy" in result.output
    assert "Student (partial, 3 epochs, views: none): " in result.output  # the CPU schedule
    assert "Student: val accuracy" in result.output and (out / "best.pt").exists() and (out / "report.html").exists()


def test_self_training_with_the_hog_view_trains_saves_and_predicts(tmp_path):
    import torch

    data = write_class_images(tmp_path / "data")
    pool = _unlabelled(tmp_path / "pool")
    out = tmp_path / "run"
    args = ["fit", str(data), "--unlabeled", str(pool), "--strategy", "self-training", "--out", str(out)]
    result = runner.invoke(app, [*args, "--layers", "last,hog", *NET])
    assert result.exit_code == 0, result.output
    spec = torch.load(out / "best.pt", weights_only=True)["spec"]
    assert spec["layers"] == ["layer4", "hog"]  # resnet18's last group, then the input's HOG descriptor
    assert spec["head"]["name"] == "views" and spec["head"]["blocks"] == [512, 1764]  # 64 px: 7·7·2·2·9 HOG
    csv = tmp_path / "predictions.csv"
    predicted = runner.invoke(app, ["predict", str(out / "best.pt"), str(data / "a"), "--out", str(csv)])
    assert predicted.exit_code == 0, predicted.output
    assert len(csv.read_text().splitlines()) == 1 + 8


def test_layers_auto_of_self_training_tries_each_candidate_with_and_without_hog(tmp_path, monkeypatch):
    import transferkit.api as api

    calls = []

    def spy(features, labels, seed=0, folds=3, extra=()):
        choice = select_layers(features, labels, seed, folds, extra)
        calls.append((list(features), list(extra), choice))
        return choice

    select_layers = api.select_layers
    monkeypatch.setattr(api, "select_layers", spy)
    data = write_class_images(tmp_path / "data")
    pool = _unlabelled(tmp_path / "pool")
    args = ["fit", str(data), "--unlabeled", str(pool), "--strategy", "self-training", "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, *NET])
    assert result.exit_code == 0, result.output
    [(blocks, extra, choice)] = calls
    assert blocks[-1] == "hog" and extra == ["hog"]
    tried = [names for names, _ in choice.scores]
    assert any(n[-1] == "hog" for n in tried) and any("hog" not in n for n in tried)
    assert f"--layers auto chose {', '.join(choice.layers)}" in result.output


def test_fixmatch_takes_its_options_and_only_the_schedule_flags_given(tmp_path):
    import yaml

    data = write_class_images(tmp_path / "data")
    pool = _unlabelled(tmp_path / "pool")  # gray, RGB and 16-bit images of other sizes: read like the labelled
    out = tmp_path / "run"
    args = ["fit", str(data), "--unlabeled", str(pool), "--strategy", "fixmatch", "--out", str(out), *NET]
    result = runner.invoke(app, [*args, "--fixmatch-options", "threshold=0.8,mu=2,min_steps=2", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "labelled, 9 unlabelled images (τ=0.8, μ=2, λ=1)" in result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["fixmatch"]["epochs"] == 2 and saved["train"]["epochs"] == 2  # --epochs given
    assert saved["train"]["batch_size"] == 64 and saved["train"]["lr"] == 5e-4  # FixMatch's, not fit's defaults
    assert (out / "best.pt").exists() and (out / "report.html").exists()
