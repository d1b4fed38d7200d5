"""Detection: the FPN's stages carry the backbone's weights and groups, COCO and YOLO boxes read as
written, bad boxes are clear errors, mAP matches hand cases, and training keeps frozen groups intact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transferkit.backbones import create_backbone
from transferkit.detection import build_detector, fit_detector, load_detection_data, load_detector, read_yolo
from transferkit.detection.train import detection_metrics
from transferkit.engine.config import TrainConfig
from transferkit.errors import DataError


def write_boxes(folder: Path, count: int = 8, size: int = 64, seed: int = 0) -> Path:
    """Noise with one or two bright squares; COCO annotations (category 1: 'square')."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "square"}]}
    for i in range(count):
        image = rng.uniform(0.2, 0.5, (size, size))
        for _ in range(int(rng.integers(1, 3))):
            s = int(rng.integers(10, 20))
            x, y = (int(v) for v in rng.integers(0, size - s, 2))
            image[y : y + s, x : x + s] = 0.95
            coco["annotations"].append({"id": len(coco["annotations"]), "image_id": i, "category_id": 1,
                                        "bbox": [x, y, s, s]})  # fmt: skip
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / "images" / f"{i:02d}.png")
        coco["images"].append({"id": i, "file_name": f"{i:02d}.png", "width": size, "height": size})
    (folder / "annotations.json").write_text(json.dumps(coco))
    return folder


def tiny(tmp_path: Path):
    torch.manual_seed(0)
    source = create_backbone("resnet18", weights=None)
    data = load_detection_data(write_boxes(tmp_path / "data"), size=64, val_fraction=0.25)
    return source, data, build_detector(source, data.classes, "fasterrcnn", image_size=64)


def config(**kw) -> TrainConfig:
    base = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "progress": False, "precision": "32-true", "accelerator": "cpu"}
    return TrainConfig(**{**base, **kw})


def test_the_pyramid_stages_hold_the_backbones_weights(tmp_path):
    source, _, model = tiny(tmp_path)
    body = model.net.backbone.body
    for name, tensor in body.state_dict().items():
        assert torch.equal(tensor, source.model.state_dict()[name]), name
    grouped = sorted(n for g in model.layer_groups() for n in g.param_names)
    assert grouped == sorted(n for n, _ in body.named_parameters())


def test_yolo_boxes_are_read_in_pixels(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.zeros((40, 80), np.uint8)).save(tmp_path / "images" / "a.png")  # 80 wide, 40 high
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    classes, items = read_yolo(tmp_path)
    assert classes == ["cat", "dog"]
    assert items[0].boxes.tolist() == [[30.0, 10.0, 50.0, 30.0]] and items[0].labels.tolist() == [1]


def test_bad_annotations_are_errors_naming_the_file(tmp_path):
    folder = write_boxes(tmp_path / "a", count=2)
    coco = json.loads((folder / "annotations.json").read_text())
    coco["annotations"][0]["bbox"] = [50, 50, 30, 30]  # past the 64×64 image
    (folder / "annotations.json").write_text(json.dumps(coco))
    with pytest.raises(
        DataError, match=r"annotations.json: box \[50.0, 50.0, 80.0, 80.0\] .* of 00.png is outside its 64×64 image"
    ):
        load_detection_data(folder, 64)

    folder = write_boxes(tmp_path / "b", count=2)
    (folder / "images" / "01.png").unlink()
    with pytest.raises(DataError, match="lists image '01.png', which is not in"):
        load_detection_data(folder, 64)

    (tmp_path / "c" / "images").mkdir(parents=True)
    (tmp_path / "c" / "labels").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "c" / "images" / "x.png")
    (tmp_path / "c" / "labels" / "x.txt").write_text("0 0.5 0.5 0.2\n")
    (tmp_path / "c" / "classes.txt").write_text("a\n")
    with pytest.raises(DataError, match=r"x.txt: each line must be 'class cx cy w h'"):
        read_yolo(tmp_path / "c")


def test_map_is_one_for_exact_boxes_and_zero_below_the_iou_threshold():
    def boxes(*box: float, score: float | None = None) -> list[dict]:
        found = {"boxes": torch.tensor([box]), "labels": torch.tensor([1])}
        return [found if score is None else {**found, "scores": torch.tensor([score])}]

    target, exact = boxes(0.0, 0.0, 10.0, 10.0), boxes(0.0, 0.0, 10.0, 10.0, score=0.9)
    assert detection_metrics(exact, target) == {"map": pytest.approx(1.0), "map_50": pytest.approx(1.0)}
    # shifted by 6 px: intersection 4×10 = 40, union 160 → IoU 0.25 < 0.5
    shifted = boxes(6.0, 0.0, 16.0, 10.0, score=0.9)
    assert detection_metrics(shifted, target)["map_50"] == pytest.approx(0.0)


def test_partial_training_keeps_frozen_stages_bit_identical_and_the_checkpoint_reloads(tmp_path):
    _, data, model = tiny(tmp_path)
    groups = model.layer_groups()
    before = [p.detach().clone() for g in groups[:-1] for p in g.parameters()]
    result = fit_detector(model, data, "partial", config(), out=tmp_path / "run", log=lambda *_: None)
    after = [p for g in groups[:-1] for p in g.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert len(result.history) == 2 and "val_map50" in result.history[0]
    loaded = load_detector(tmp_path / "run" / "best.pt")
    images = [data.val[0][0]]
    with torch.no_grad():
        got, expected = loaded(images)[0], result.model.eval()(images)[0]
    assert torch.equal(got["boxes"], expected["boxes"]) and torch.equal(got["labels"], expected["labels"])


def test_retinanet_on_the_same_pyramid_returns_finite_losses_and_boxes(tmp_path):
    torch.manual_seed(0)
    data = load_detection_data(write_boxes(tmp_path / "data", count=4), size=64)
    model = build_detector(create_backbone("resnet18", weights=None), data.classes, "retinanet", image_size=64)
    images, targets = zip(*[data.train[i] for i in range(len(data.train))])
    losses = model.train()(list(images), list(targets))
    assert set(losses) == {"classification", "bbox_regression"} and all(torch.isfinite(v) for v in losses.values())
    with torch.no_grad():
        found = model.eval()(list(images))
    assert len(found) == len(images) and all(set(f) == {"boxes", "scores", "labels"} for f in found)


def test_a_reloaded_detector_normalises_images_as_the_trained_one(tmp_path):
    """Pretrained weights may come with another normalisation than a random init of the same network
    (EfficientNet-Lite's ImageNet weights: mean = std = 0.5): the reloaded model must keep the trained one's."""
    import dataclasses

    torch.manual_seed(0)
    source = create_backbone("resnet18", weights=None)
    source.data_config = dataclasses.replace(source.data_config, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    model = build_detector(source, ["box"], "fasterrcnn", image_size=64).eval()
    torch.save({"spec": model.spec(), "state_dict": model.state_dict()}, tmp_path / "best.pt")
    loaded = load_detector(tmp_path / "best.pt")
    transform = loaded.net.transform
    assert transform.image_mean == [0.5, 0.5, 0.5] and transform.image_std == [0.5, 0.5, 0.5]
    image = [torch.rand(3, 64, 64)]
    with torch.no_grad():
        got, expected = loaded(image)[0], model(image)[0]
    assert torch.equal(got["boxes"], expected["boxes"]) and torch.equal(got["scores"], expected["scores"])
