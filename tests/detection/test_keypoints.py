"""Keypoints: COCO keypoints read and resized with the image, count mismatches are clear errors,
PCK and OKS match hand-computed numbers, Keypoint R-CNN trains on the pyramid and measures needles."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile
import torch

from transferkit.backbones import create_backbone
from transferkit.detection import build_detector, fit_detector, load_detection_data, load_detector
from transferkit.detection.crystals import KEYPOINTS, write_crystals
from transferkit.detection.keypoints import keypoint_metrics
from transferkit.errors import ConfigError, DataError

from .test_instances import config


def _target(points):
    return {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "labels": torch.tensor([1]),
            "keypoints": torch.tensor([points], dtype=torch.float32)}  # fmt: skip


def _prediction(points, box=(0.0, 0.0, 10.0, 10.0), label=1):
    return {"boxes": torch.tensor([box]), "labels": torch.tensor([label]), "scores": torch.tensor([0.9]),
            "keypoints": torch.tensor([points], dtype=torch.float32)}  # fmt: skip


def test_pck_and_oks_match_hand_computed_numbers():
    target = _target([[2, 2, 2], [6, 6, 2], [9, 1, 0]])  # the third is invisible: never scored
    found = _prediction([[3, 2, 1], [6, 8, 1], [0, 0, 1]])  # off by 1 px and by 2 px
    metrics = keypoint_metrics([found], [target], alpha=0.1, kappa=0.1)
    # PCK@0.1 of a 10×10 box: within 1 px → the first only: 1/2
    assert metrics["pck"] == pytest.approx(0.5)
    # OKS: s² = 100, κ² = 0.01 → exp(-d²/2): (exp(-0.5) + exp(-2)) / 2
    assert metrics["oks"] == pytest.approx((math.exp(-0.5) + math.exp(-2.0)) / 2)


def test_a_prediction_of_another_class_or_place_scores_zero():
    target = _target([[2, 2, 2], [6, 6, 2]])
    exact = [[2, 2, 1], [6, 6, 1]]
    assert keypoint_metrics([_prediction(exact)], [target]) == {"pck": 1.0, "oks": 1.0}
    assert keypoint_metrics([_prediction(exact, label=2)], [target]) == {"pck": 0.0, "oks": 0.0}
    far = (20.0, 20.0, 30.0, 30.0)  # box IoU 0 with the truth: not matched, whatever its keypoints
    assert keypoint_metrics([_prediction(exact, box=far)], [target]) == {"pck": 0.0, "oks": 0.0}


def test_crystal_needles_carry_their_tips_and_keypoints_resize_with_the_image(tmp_path):
    write_crystals(tmp_path / "data", {"train": 3, "val": 3}, size=96, seed=2)
    coco = json.loads((tmp_path / "data" / "val" / "annotations.json").read_text())
    needles = [a for a in coco["annotations"] if a["category_id"] == 3]
    assert needles and all(a["keypoints"][0] <= a["keypoints"][3] for a in needles)  # the left tip first
    assert all(a["keypoints"][2] in (1, 2) and a["keypoints"][5] in (1, 2) for a in needles)  # 1: under a crystal
    assert all(a["keypoints"] == [0.0] * 6 for a in coco["annotations"] if a["category_id"] != 3)
    data = load_detection_data(tmp_path / "data", size=48, keypoints=True)
    assert data.keypoint_names == list(KEYPOINTS)
    image, target = data.val[0]
    first = coco["annotations"][[a["image_id"] for a in coco["annotations"]].index(1)]
    expected = torch.tensor(first["keypoints"]).reshape(2, 3) * torch.tensor([0.5, 0.5, 1.0])  # 96 → 48 px
    torch.testing.assert_close(target["keypoints"][0], expected)
    assert target["keypoints"].shape == (len(target["boxes"]), 2, 3)


def _coco_with(tmp_path, keypoints, names=("a", "b")):
    (tmp_path / "images").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "images" / "x.tif", np.zeros((20, 30), np.uint16))
    ann = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [2, 2, 5, 5], "keypoints": keypoints}
    coco = {"images": [{"id": 1, "file_name": "x.tif"}], "annotations": [ann],
            "categories": [{"id": 1, "name": "c", "keypoints": list(names)}]}  # fmt: skip
    (tmp_path / "annotations.json").write_text(json.dumps(coco))
    return tmp_path


@pytest.mark.parametrize(
    ("keypoints", "message"),
    [([3, 3, 2], "has 3 keypoint numbers.*2 keypoints, so 6"), ([3, 3, 2, 40, 3, 2], "outside its 30×20 image")],
)
def test_bad_keypoints_are_errors_naming_the_file(tmp_path, keypoints, message):
    with pytest.raises(DataError, match=message) as caught:
        load_detection_data(_coco_with(tmp_path, keypoints), size=32, keypoints=True)
    assert "annotations.json" in str(caught.value) and "x.tif" in str(caught.value)


def test_an_invisible_keypoint_may_lie_anywhere(tmp_path):
    data = load_detection_data(_coco_with(tmp_path, [3, 3, 2, 40, 3, 0]), size=32, keypoints=True)
    assert data.val[0][1]["keypoints"].shape == (1, 2, 3)


def test_keypoint_rcnn_trains_reloads_and_refuses_data_without_its_keypoints(tmp_path):
    torch.manual_seed(0)
    write_crystals(tmp_path / "data", {"train": 4, "val": 2}, size=64, seed=3)
    data = load_detection_data(tmp_path / "data", size=64, keypoints=True)
    source = create_backbone("resnet18", weights=None)
    model = build_detector(source, data.classes, "keypointrcnn", image_size=64, keypoints=data.keypoint_names)
    result = fit_detector(model, data, "fine-tune", config(), out=tmp_path / "run", log=lambda *_: None)
    assert {"val_pck", "val_oks", "val_map50"} <= set(result.history[0])
    loaded = load_detector(tmp_path / "run" / "best.pt")
    assert loaded.keypoint_names == list(KEYPOINTS)
    with torch.no_grad():
        found = loaded([data.val[0][0]])[0]
    assert found["keypoints"].shape[1:] == (2, 3)
    boxes_only = load_detection_data(tmp_path / "data", size=64)
    with pytest.raises(ConfigError, match="2 keypoints.*holds 0"):
        fit_detector(model, boxes_only, "fine-tune", config(), log=lambda *_: None)
