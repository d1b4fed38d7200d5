"""``transferkit segment fit|evaluate|predict`` on a tiny folder of images and masks."""

import csv

import numpy as np
from PIL import Image

from transferkit.cli.main import app

from ..segmentation.test_segmentation import write_shapes
from .test_cli import runner

NET = ["--backbone", "resnet18", "--weights", "none", "--image-size", "64", "--precision", "32-true"]


def test_segment_fit_evaluate_and_predict(tmp_path):
    data = write_shapes(tmp_path / "data", count=10)
    out = tmp_path / "run"
    fitted = runner.invoke(app, ["segment", "fit", str(data), *NET, "--epochs", "2", "--batch-size", "4",
                                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    assert "val mIoU" in fitted.output and (out / "best.pt").is_file() and (out / "metrics.csv").is_file()
    assert "Validation images: truth | prediction" in (out / "report.html").read_text()

    scored = runner.invoke(app, ["segment", "evaluate", str(out / "best.pt"), str(data)])
    assert scored.exit_code == 0, scored.output
    assert "mean" in scored.output and "IoU" in scored.output

    big = tmp_path / "big.png"  # predicted at the image's own size, whatever the training size
    Image.fromarray(np.full((90, 70), 128, np.uint8)).save(big)
    predicted = runner.invoke(app, ["segment", "predict", str(out / "best.pt"), str(big), "--out", str(tmp_path / "m")])
    assert predicted.exit_code == 0, predicted.output
    mask = np.asarray(Image.open(tmp_path / "m" / "big.png"))
    assert mask.shape == (90, 70) and mask.max() < 3
    rows = list(csv.DictReader((tmp_path / "m" / "pixels.csv").open()))
    assert len(rows) == 1 and sum(int(rows[0][c]) for c in ("0", "1", "2")) == 90 * 70

    exported = runner.invoke(app, ["export", str(out / "best.pt"), str(tmp_path / "seg.onnx")])
    assert exported.exit_code == 0, exported.output
    assert "max |Δlogit| vs PyTorch" in exported.output


def test_segment_fit_names_a_mask_of_the_wrong_size(tmp_path):
    data = write_shapes(tmp_path / "data", count=4)
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(data / "masks" / "03.png")
    result = runner.invoke(app, ["segment", "fit", str(data), *NET, "--epochs", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert "03.png is 5×5" in str(result.exception) + result.output


def test_detect_fit_evaluate_and_count(tmp_path):
    from ..detection.test_detection import write_boxes

    data = write_boxes(tmp_path / "data", count=8)
    out = tmp_path / "run"
    net = ["--backbone", "resnet18", "--weights", "none", "--image-size", "64"]
    fitted = runner.invoke(app, ["detect", "fit", str(data), *net, "--epochs", "1", "--batch-size", "4",
                                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    assert "val box mAP@.5" in fitted.output and (out / "best.pt").is_file()
    scored = runner.invoke(app, ["detect", "evaluate", str(out / "best.pt"), str(data)])
    assert scored.exit_code == 0, scored.output
    assert "mAP@.5" in scored.output
    big = tmp_path / "big.png"
    Image.fromarray(np.full((90, 70), 128, np.uint8)).save(big)
    boxes = tmp_path / "found.csv"
    predicted = runner.invoke(app, ["detect", "predict", str(out / "best.pt"), str(big), "--out", str(boxes),
                                    "--min-score", "0"])  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    found = list(csv.DictReader(boxes.open()))
    counts = list(csv.DictReader((tmp_path / "found_counts.csv").open()))
    assert len(counts) == 1 and int(counts[0]["total"]) == len(found)  # every listed box is counted
    assert all(0 <= float(r["x1"]) <= float(r["x2"]) <= 70.5 and float(r["y2"]) <= 90.5 for r in found)


def test_maskrcnn_on_16_bit_crystals_reports_mask_map_and_measures_each_instance(tmp_path):
    import tifffile

    from transferkit.detection.crystals import write_crystals

    data = write_crystals(tmp_path / "data", {"train": 4, "val": 2}, size=64)
    out = tmp_path / "run"
    net = ["--backbone", "resnet18", "--weights", "none", "--image-size", "64", "--arch", "maskrcnn"]
    fitted = runner.invoke(app, ["detect", "fit", str(data), *net, "--epochs", "1", "--batch-size", "2",
                                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    assert "mask mAP@.5" in fitted.output
    page = (out / "report.html").read_text()  # truth | prediction overlays of both validation images
    assert page.count("alt='image ") == 2 and "truth (" in page and "val_mask_map50" in page
    scored = runner.invoke(app, ["detect", "evaluate", str(out / "best.pt"), str(data), "--split", "val"])
    assert scored.exit_code == 0 and "mask mAP@.5" in scored.output, scored.output
    assert f"on 2 images of {data / 'val'}" in scored.output
    big = tmp_path / "big.tif"  # 16-bit, twice the training size: areas come back in its own pixels
    tifffile.imwrite(
        big, np.kron(tifffile.imread(next((data / "val" / "images").iterdir())), np.ones((2, 2), np.uint16))
    )
    found_csv = tmp_path / "found.csv"
    predicted = runner.invoke(app, ["detect", "predict", str(out / "best.pt"), str(big), "--out", str(found_csv),
                                    "--min-score", "0"])  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    for row in csv.DictReader(found_csv.open()):
        box_area = (float(row["x2"]) - float(row["x1"])) * (float(row["y2"]) - float(row["y1"]))
        # a mask is pasted into its box grown by torchvision's one-cell border (30/28 per side): ≤ 1.15× + edges
        assert 0 <= float(row["area_px"]) <= box_area * 1.3 + 16


def test_keypointrcnn_fit_reports_pck_and_predict_writes_each_keypoint(tmp_path):
    from transferkit.detection.crystals import write_crystals

    data = write_crystals(tmp_path / "data", {"train": 4, "val": 2}, size=64, seed=3)
    out = tmp_path / "run"
    net = ["--backbone", "resnet18", "--weights", "none", "--image-size", "64", "--arch", "keypointrcnn"]
    fitted = runner.invoke(app, ["detect", "fit", str(data), *net, "--epochs", "1", "--batch-size", "2",
                                 "--out", str(out), "--no-progress"])  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    assert "PCK@0.1" in fitted.output and "OKS" in fitted.output
    found_csv = tmp_path / "found.csv"
    image = next((data / "val" / "images").iterdir())
    predicted = runner.invoke(app, ["detect", "predict", str(out / "best.pt"), str(image), "--out", str(found_csv),
                                    "--min-score", "0"])  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    header = found_csv.read_text().splitlines()[0].split(",")
    assert header[-4:] == ["tip_left_x", "tip_left_y", "tip_right_x", "tip_right_y"]


def test_evaluate_scores_the_split_sub_folder_of_a_fit_layout(tmp_path):
    import pytest

    from transferkit.cli._common import scored_folder
    from transferkit.errors import DataError

    flat = tmp_path / "flat"
    (flat / "images").mkdir(parents=True)
    assert scored_folder(flat, "test") == flat
    layout = tmp_path / "layout"
    for split in ("train", "val"):
        (layout / split / "images").mkdir(parents=True)
    assert scored_folder(layout, "val") == layout / "val"
    with pytest.raises(DataError, match=r"has no test/images/ to score \(sub-folders: \['train', 'val'\]\); pick one"):
        scored_folder(layout, "test")
