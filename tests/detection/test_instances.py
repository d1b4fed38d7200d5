"""Instance masks: crystal micrographs with exact polygons, COCO polygons and RLE read as drawn, bad
segmentations are clear errors, mask mAP matches hand cases, Mask R-CNN and FCOS train on the pyramid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch

from transferkit.backbones import create_backbone
from transferkit.detection import build_detector, fit_detector, load_detection_data, load_detector
from transferkit.detection.crystals import CLASSES, coco_annotations, make_crystals, outline_mask, write_crystals
from transferkit.detection.data import decode_segmentation
from transferkit.detection.train import detection_metrics
from transferkit.engine.config import TrainConfig
from transferkit.errors import ConfigError, DataError


def test_crystals_are_16_bit_noisy_fields_whose_visible_masks_partition_the_crystals():
    images, instances = make_crystals(6, size=96, seed=1)
    assert all(image.dtype == np.uint16 and image.shape == (96, 96) for image in images)
    for image, crystals in zip(images, instances):
        assert crystals and {c.label for c in crystals} <= set(range(len(CLASSES)))
        covered = np.sum([c.visible for c in crystals], axis=0)
        assert covered.max() == 1  # a pixel shows one crystal at most
        for crystal in crystals:
            assert image[crystal.visible].mean() > np.median(image[covered == 0])  # brighter than the field
        assert image[covered == 0].std() > 0 and image.max() > 255  # noisy and beyond 8 bits


def test_partly_hidden_crystals_are_written_as_the_rle_of_exactly_their_visible_pixels(tmp_path):
    images, instances = make_crystals(12, size=96, seed=4)
    hidden = [c for crystals in instances for c in crystals if c.visible.sum() < outline_mask(c, 96).sum()]
    assert hidden, "a third of the crystals grow against another: some must be partly hidden"
    coco = coco_annotations([f"{i}.tif" for i in range(12)], instances, 96)
    by_order = [c for crystals in instances for c in crystals]
    kinds = {"polygon": 0, "rle": 0}
    for ann, crystal in zip(coco["annotations"], by_order):
        decoded = decode_segmentation(ann["segmentation"], 96, 96).astype(bool)
        if isinstance(ann["segmentation"], dict):
            kinds["rle"] += 1
            assert np.array_equal(decoded, crystal.visible)
        else:  # pycocotools' rasteriser against scikit-image's: the same polygon, edge pixels may differ
            kinds["polygon"] += 1
            assert (decoded & crystal.visible).sum() / (decoded | crystal.visible).sum() > 0.9
        assert ann["area"] == crystal.visible.sum()
    assert kinds["rle"] and kinds["polygon"]


def test_a_coco_polygon_becomes_the_mask_drawn_by_hand():
    # a right triangle with legs of 10 px: pycocotools' rasteriser covers ~50 px (independent of ours)
    mask = decode_segmentation([[0, 0, 10, 0, 0, 10]], 12, 12)
    assert mask.shape == (12, 12) and 40 <= mask.sum() <= 66
    assert mask[1, 1] == 1 and mask[9, 9] == 0


def test_rle_both_compressed_and_uncompressed_round_trips_exactly():
    from pycocotools import mask as mask_utils

    drawn = np.zeros((7, 9), np.uint8)
    drawn[2:5, 3:8] = 1
    compressed = mask_utils.encode(np.asfortranarray(drawn))
    assert np.array_equal(decode_segmentation(compressed, 7, 9), drawn)
    # uncompressed: counts of alternating 0/1 runs in column-major order, counted by hand
    counts, value, run = [], 0, 0
    for x in drawn.T.reshape(-1):
        if x != value:
            counts.append(run)
            value, run = x, 0
        run += 1
    counts.append(run)
    assert np.array_equal(decode_segmentation({"size": [7, 9], "counts": counts}, 7, 9), drawn)


def test_masks_follow_their_boxes_through_the_resize(tmp_path):
    write_crystals(tmp_path / "data", {"train": 4, "val": 2}, size=96, seed=0)
    data = load_detection_data(tmp_path / "data", size=64, masks=True)
    assert data.classes == list(CLASSES)
    image, target = data.val[0]
    assert image.shape == (3, 64, 64) and target["masks"].shape == (len(target["boxes"]), 64, 64)
    for box, mask in zip(target["boxes"], target["masks"]):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        tight = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
        assert torch.allclose(tight, box, atol=2.0)  # the polygon's box, scaled by 64/96 like the mask


def _coco(tmp_path, segmentation):
    (tmp_path / "images").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "images" / "a.tif", np.zeros((20, 30), np.uint16))
    ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 5, 5]}
    if segmentation is not None:
        ann["segmentation"] = segmentation
    coco = {"images": [{"id": 1, "file_name": "a.tif"}], "categories": [{"id": 1, "name": "x"}], "annotations": [ann]}
    (tmp_path / "annotations.json").write_text(json.dumps(coco))
    return tmp_path


@pytest.mark.parametrize(
    ("segmentation", "message"),
    [
        ([[2, 2, 7, 2]], "fewer than 3 points"),
        ({"size": [30, 20], "counts": [600]}, "is 20×30"),
        ("a string", "neither polygons"),
    ],
)
def test_bad_segmentations_are_errors_naming_the_file(tmp_path, segmentation, message):
    with pytest.raises(DataError, match=message) as caught:
        load_detection_data(_coco(tmp_path, segmentation), size=32, masks=True)
    assert "annotations.json" in str(caught.value) and "a.tif" in str(caught.value)


def test_instance_masks_need_a_segmentation_per_box(tmp_path):
    data = load_detection_data(_coco(tmp_path, None), size=32, masks=True)
    with pytest.raises(DataError, match="without a 'segmentation'.*fasterrcnn"):
        data.val[0]  # one image: it is the validation split


def test_mask_map_is_one_for_the_exact_mask_and_zero_for_a_disjoint_one():
    target_mask = torch.zeros(1, 20, 20, dtype=torch.uint8)
    target_mask[0, 2:12, 2:12] = 1
    target = [{"boxes": torch.tensor([[2.0, 2.0, 12.0, 12.0]]), "labels": torch.tensor([1]), "masks": target_mask}]

    def predicted(mask: torch.Tensor) -> list[dict]:
        box = torch.tensor([[2.0, 2.0, 12.0, 12.0]])  # the box is right both times: only the mask differs
        return [{"boxes": box, "labels": torch.tensor([1]), "scores": torch.tensor([0.9]), "masks": mask[:, None]}]

    exact = detection_metrics(predicted(target_mask.float()), target)
    assert exact["mask_map_50"] == pytest.approx(1.0) and exact["map_50"] == pytest.approx(1.0)
    moved = torch.zeros(1, 20, 20)
    moved[0, 12:20, 12:20] = 1.0  # no pixel in common: mask IoU 0
    wrong = detection_metrics(predicted(moved), target)
    assert wrong["mask_map_50"] == pytest.approx(0.0) and wrong["map_50"] == pytest.approx(1.0)


def config(**kw) -> TrainConfig:
    base = {"epochs": 1, "batch_size": 2, "lr": 1e-3, "progress": False, "precision": "32-true", "accelerator": "cpu"}
    return TrainConfig(**{**base, **kw})


def test_mask_rcnn_trains_on_crystals_keeps_frozen_stages_and_reloads(tmp_path):
    torch.manual_seed(0)
    write_crystals(tmp_path / "data", {"train": 4, "val": 2}, size=64, seed=0)
    data = load_detection_data(tmp_path / "data", size=64, masks=True)
    model = build_detector(create_backbone("resnet18", weights=None), data.classes, "maskrcnn", image_size=64)
    frozen = [p.detach().clone() for p in model.layer_groups()[0].parameters()]
    result = fit_detector(model, data, "partial", config(), out=tmp_path / "run", log=lambda *_: None)
    assert {"val_map50", "val_mask_map50"} <= set(result.history[0])
    assert all(torch.equal(a, b) for a, b in zip(frozen, model.layer_groups()[0].parameters()))
    loaded = load_detector(tmp_path / "run" / "best.pt")
    with torch.no_grad():
        found = loaded([data.val[0][0]])[0]
    assert "masks" in found and found["masks"].shape[1:] == (1, 64, 64)


def test_mask_rcnn_without_masks_in_the_data_is_a_clear_error(tmp_path):
    write_crystals(tmp_path / "data", {"train": 2, "val": 1}, size=64)
    data = load_detection_data(tmp_path / "data", size=64)  # boxes only
    model = build_detector(create_backbone("resnet18", weights=None), data.classes, "maskrcnn", image_size=64)
    with pytest.raises(ConfigError, match="masks=True"):
        fit_detector(model, data, "fine-tune", config(), log=lambda *_: None)


def test_fcos_on_the_same_pyramid_returns_finite_losses_and_boxes(tmp_path):
    torch.manual_seed(0)
    write_crystals(tmp_path / "data", {"train": 2, "val": 1}, size=64)
    data = load_detection_data(tmp_path / "data", size=64)
    model = build_detector(create_backbone("resnet18", weights=None), data.classes, "fcos", image_size=64)
    images, targets = zip(*[data.train[i] for i in range(len(data.train))])
    losses = model.train()(list(images), list(targets))
    assert set(losses) == {"classification", "bbox_regression", "bbox_ctrness"}
    assert all(torch.isfinite(v) for v in losses.values())
    with torch.no_grad():
        assert len(model.eval()(list(images))) == len(images)
