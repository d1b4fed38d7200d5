"""``transferkit anomaly fit|evaluate|predict`` on a tiny MVTec-style folder of texture defects."""

import csv

from PIL import Image

from transferkit.anomaly.defects import write_defects
from transferkit.cli.main import app

from .test_cli import runner


def test_anomaly_fit_evaluate_and_predict(tmp_path):
    data = write_defects(tmp_path / "data", "grass", train=8, test_good=3, test_defect=3, size=48)
    out = tmp_path / "run"
    net = ["--backbone", "resnet18", "--weights", "none", "--image-size", "48"]
    fitted = runner.invoke(app, ["anomaly", "fit", str(data), *net, "--out", str(out)])
    assert fitted.exit_code == 0, fitted.output
    assert "test image AUROC" in fitted.output and "pixel AUROC" in fitted.output
    assert "strides: [4, 8]" in (out / "report.html").read_text()  # PatchCore's default stages
    page = (out / "report.html").read_text()
    assert page.count("alt='") == 6 and "score" in page  # all six test images: image | heatmap | truth

    scored = runner.invoke(app, ["anomaly", "evaluate", str(out / "model.pt"), str(data)])
    assert scored.exit_code == 0 and "image AUROC" in scored.output and "on 6 images" in scored.output, scored.output

    big = tmp_path / "big.png"
    Image.open(next((data / "test" / "good").iterdir())).resize((100, 70)).save(big)
    found = tmp_path / "scores.csv"
    predicted = runner.invoke(app, ["anomaly", "predict", str(out / "model.pt"), str(big), "--out", str(found),
                                    "--maps", str(tmp_path / "maps")])  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    rows = list(csv.DictReader(found.open()))
    assert len(rows) == 1 and rows[0]["anomalous"] in ("0", "1") and float(rows[0]["score"]) >= 0
    assert Image.open(tmp_path / "maps" / "big.png").size == (100, 70)  # the heatmap at the image's own size


def test_anomaly_fit_refuses_strides_that_are_not_numbers(tmp_path):
    data = write_defects(tmp_path / "data", "brick", train=4, test_good=1, test_defect=1, size=32)
    result = runner.invoke(app, ["anomaly", "fit", str(data), "--strides", "8,x", "--weights", "none"])
    assert result.exit_code != 0 and "--strides takes whole numbers" in result.output, result.output


def test_anomaly_fit_defaults_are_the_librarys():
    import inspect

    from transferkit.anomaly.model import BACKBONE, IMAGE_SIZE
    from transferkit.cli.anomaly import fit

    options = inspect.signature(fit).parameters
    assert (options["backbone"].default.default, options["image_size"].default.default) == (BACKBONE, IMAGE_SIZE)
