"""Segmentation: the encoder carries the backbone's weights and groups, metrics match hand counts,
bad masks are clear errors, frozen encoder groups stay bit-identical, and a killed run resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transferkit.backbones import create_backbone
from transferkit.engine.config import TrainConfig
from transferkit.errors import DataError
from transferkit.segmentation import build_segmenter, fit_segmenter, load_segmentation_data, load_segmenter
from transferkit.segmentation.data import find_pairs
from transferkit.segmentation.train import class_weights, segmentation_metrics


def write_shapes(folder: Path, count: int = 10, size: int = 64, seed: int = 0) -> Path:
    """Noise with a bright square (class 1) and a dark disc (class 2); exact masks."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        image = rng.uniform(0.3, 0.6, (size, size))
        mask = np.zeros((size, size), np.uint8)
        x, y, s = rng.integers(0, size // 2, 3)
        s = 8 + s % 16
        image[y : y + s, x : x + s], mask[y : y + s, x : x + s] = 0.95, 1
        cx, cy, r = rng.integers(12, size - 12, 2).tolist() + [int(rng.integers(5, 10))]
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        image[disc], mask[disc] = 0.05, 2
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / "images" / f"{i:02d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{i:02d}.png")
    return folder


def tiny(tmp_path: Path, arch: str = "unet"):
    torch.manual_seed(0)
    source = create_backbone("resnet18", weights=None)
    data = load_segmentation_data(write_shapes(tmp_path / "data"), source.data_config, size=64, val_fraction=0.3)
    return source, data, build_segmenter(source, data.classes, arch, data_config=data.data_config)


def config(**kw) -> TrainConfig:
    base = {"epochs": 3, "batch_size": 4, "lr": 1e-3, "progress": False, "precision": "32-true", "accelerator": "cpu"}
    return TrainConfig(**{**base, **kw})


def quiet(*_args) -> None:
    pass


def test_the_encoder_holds_the_backbones_weights_and_computes_its_feature_maps(tmp_path):
    source, _, model = tiny(tmp_path)
    encoder = model.net.encoder.model
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, source.model.state_dict()[name]), name
    captured = []
    source.model.layer4.register_forward_hook(lambda _m, _i, out: captured.append(out))
    x = torch.rand(2, 3, 64, 64)
    source.eval(), encoder.eval()
    with torch.no_grad():
        source.model(x)
        deepest = encoder(x)[-1]
    assert torch.allclose(deepest, captured[0], atol=1e-6)
    groups = model.layer_groups()
    in_groups = sorted(n for g in groups for n in g.param_names)
    assert in_groups == sorted(n for n, _ in encoder.named_parameters())  # every encoder parameter, once
    assert [g.name for g in groups] == [g.name for g in source.layer_groups()][: len(groups)]


def test_iou_and_dice_match_hand_counts():
    masks = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 255]]])
    preds = torch.tensor([[[0, 1, 1, 1], [0, 0, 0, 1]]])
    metrics = segmentation_metrics(preds, masks, 2)
    # by hand, the 255 pixel left out: class 0 TP 3, FP 1, FN 1 → IoU 3/5, Dice 6/8; class 1 TP 2, FP 1, FN 1
    assert metrics["iou"] == pytest.approx([3 / 5, 2 / 4])
    assert metrics["dice_per_class"] == pytest.approx([6 / 8, 4 / 6])
    assert metrics["miou"] == pytest.approx((3 / 5 + 2 / 4) / 2)


def test_class_weights_are_inverse_square_root_frequencies_with_mean_one():
    weights = class_weights(np.array([900.0, 100.0, 0.0]))
    expected = np.array([1 / np.sqrt(0.9), 1 / np.sqrt(0.1)])
    expected /= expected.mean()
    assert weights.tolist() == pytest.approx([*expected, 1.0])


def test_bad_masks_are_errors_naming_the_file_and_the_fix(tmp_path):
    folder = write_shapes(tmp_path / "a", count=3)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(folder / "masks" / "01.png")
    with pytest.raises(DataError, match=r"01.png is 12×10 but its image .*01.png is 64×64"):
        load_segmentation_data(folder, create_backbone("resnet18", weights=None).data_config, 64)

    folder = write_shapes(tmp_path / "b", count=3)
    (folder / "classes.txt").write_text("background\nsquare\n")  # two classes, but the masks hold id 2
    with pytest.raises(DataError, match="holds class id 2, outside 0…1"):
        load_segmentation_data(folder, create_backbone("resnet18", weights=None).data_config, 64)

    folder = write_shapes(tmp_path / "c", count=3)
    (folder / "masks" / "02.png").unlink()
    with pytest.raises(DataError, match="have no mask"):
        find_pairs(folder)

    folder = write_shapes(tmp_path / "d", count=3)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + np.array([200, 0, 0], np.uint8)).save(folder / "masks" / "00.png")
    with pytest.raises(DataError, match="colour mask but no classes.txt"):
        load_segmentation_data(folder, create_backbone("resnet18", weights=None).data_config, 64)


def test_colour_masks_are_read_through_classes_txt(tmp_path):
    folder = write_shapes(tmp_path / "d", count=3)
    colour = np.zeros((64, 64, 3), np.uint8)
    colour[:, 32:] = (200, 0, 0)
    Image.fromarray(colour).save(folder / "masks" / "00.png")
    (folder / "classes.txt").write_text("background 0 0 0\nred 200 0 0\n")
    for i in (1, 2):  # the others as colour masks too
        Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "masks" / f"0{i}.png")
    data = load_segmentation_data(folder, create_backbone("resnet18", weights=None).data_config, 64, val_fraction=0.34)
    assert data.classes == ["background", "red"]
    pairs = data.train.pairs + data.val.pairs
    index = [p[1].name for p in pairs].index("00.png")
    dataset = data.train if index < len(data.train) else data.val
    _, mask = dataset.raw(index if index < len(data.train) else index - len(data.train))
    assert mask[:, :32].eq(0).all() and mask[:, 32:].eq(1).all()


def test_frozen_encoder_groups_stay_bit_identical(tmp_path):
    _, data, model = tiny(tmp_path)
    groups = model.layer_groups()
    before = {n: p.detach().clone() for g in groups[:-1] for n, p in zip(g.param_names, g.parameters())}
    result = fit_segmenter(model, data, "partial", config(epochs=2), log=quiet)  # only the deepest group trains
    after = dict(zip([n for g in groups[:-1] for n in g.param_names], [p for g in groups[:-1] for p in g.parameters()]))
    assert all(torch.equal(before[n], after[n]) for n in before)
    last = list(groups[-1].parameters())
    assert len(result.history) == 2 and any(p.requires_grad for p in last)


def test_a_killed_run_resumes_exactly_and_the_checkpoint_reloads(tmp_path):
    _, data, model = tiny(tmp_path)
    full = fit_segmenter(model, data, "fine-tune", config(), out=tmp_path / "full", log=quiet)

    def dies_after_two(line: str) -> None:
        if line.startswith("segment epoch 2"):
            raise KeyboardInterrupt("killed")

    _, data2, model2 = tiny(tmp_path / "again")
    with pytest.raises(KeyboardInterrupt):
        fit_segmenter(model2, data2, "fine-tune", config(), out=tmp_path / "killed", log=dies_after_two)
    _, data3, model3 = tiny(tmp_path / "third")
    resumed = fit_segmenter(model3, data3, "fine-tune", config(), out=tmp_path / "killed", resume=True, log=quiet)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in full.history]
    loaded = load_segmenter(tmp_path / "full" / "best.pt")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), full.model.eval()(x))


def test_a_resume_with_other_strategy_settings_or_data_is_refused_and_overwrites_nothing(tmp_path):
    from transferkit.errors import ConfigError
    from transferkit.strategies.partial import PartialFineTune

    _, data, model = tiny(tmp_path)
    out = tmp_path / "run"
    fit_segmenter(model, data, PartialFineTune(groups=2), config(epochs=1), out=out, log=quiet)
    saved = {name: (out / name).read_bytes() for name in ("last.pt", "config.yaml", "metrics.csv")}
    with pytest.raises(ConfigError, match=r"strategy\.groups: 2 → 1"):
        fit_segmenter(model, data, PartialFineTune(groups=1), config(epochs=1), out=out, resume=True, log=quiet)
    source = create_backbone("resnet18", weights=None)
    more = load_segmentation_data(write_shapes(tmp_path / "more", count=14), source.data_config, 64, val_fraction=0.3)
    with pytest.raises(ConfigError, match=rf"data\.train: {len(data.train)} → {len(more.train)}"):
        fit_segmenter(model, more, PartialFineTune(groups=2), config(epochs=1), out=out, resume=True, log=quiet)
    assert {name: (out / name).read_bytes() for name in saved} == saved


def test_onnx_export_of_a_segmentation_model_matches_pytorch(tmp_path):
    from transferkit.export import export_model

    _, _, model = tiny(tmp_path)
    report = export_model(model.eval(), tmp_path / "seg.onnx")  # raises when |Δlogit| > 1e-4 on a fresh batch
    assert report.ok and report.max_abs_diff <= 1e-4 and (tmp_path / "seg.onnx").is_file()


def test_the_run_report_shows_overlays_per_class_scores_and_the_test_split(tmp_path):
    import base64
    import io
    import re

    for split, seed in (("train", 0), ("val", 1), ("test", 2)):
        write_shapes(tmp_path / "data" / split, count=4, seed=seed)
    torch.manual_seed(0)
    source = create_backbone("resnet18", weights=None)
    data = load_segmentation_data(tmp_path / "data", source.data_config, size=64)
    model = build_segmenter(source, data.classes, "unet", data_config=data.data_config)
    result = fit_segmenter(model, data, "fine-tune", config(epochs=1), out=tmp_path / "run", log=quiet)
    from transferkit.segmentation import evaluate_segmenter

    assert result.test_metrics["miou"] == pytest.approx(evaluate_segmenter(result.model, data.test)["miou"])
    from transferkit.report import dense_report
    from transferkit.segmentation.overlays import mask_examples, per_class_table

    per_class = per_class_table(evaluate_segmenter(result.model, data.val), data.classes)
    page = dense_report(tmp_path / "run", result, mask_examples(result.model, data.val), per_class).read_text()
    assert page.index("Results") < page.index("Test (scored once") < page.index("Per class") < page.index("Epochs")
    assert all(f"<td>{name}</td>" in page for name in data.classes)
    overlays = re.findall(r"data:image/png;base64,([^']+)' alt='image \d: image \| truth \| prediction", page)
    assert len(overlays) == 4  # every validation image, as image | truth | prediction at 2× scale
    strip = Image.open(io.BytesIO(base64.b64decode(overlays[0])))
    assert strip.size == (3 * 64 * 2, 64 * 2)


def test_16_bit_tiff_micrographs_keep_their_precision_and_pair_with_their_masks(tmp_path):
    import tifffile

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(4):
        image = np.full((32, 40), 1000, np.uint16)
        image[8:20, 10:30] = 1001 + 60000 * (i % 2)  # 1000 vs 1001 would merge in 8 bits
        mask = np.zeros((32, 40), np.uint8)
        mask[8:20, 10:30] = 1
        tifffile.imwrite(tmp_path / "images" / f"{i}.tif", image)
        Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
    source = create_backbone("resnet18", weights=None)
    data = load_segmentation_data(tmp_path, source.data_config, size=32, val_fraction=0.5)
    raw, mask = data.train.raw(0)
    assert raw.shape == (3, 32, 40) and mask.shape == (32, 40)
    inside, outside = raw[0, 10, 12], raw[0, 2, 2]
    assert inside > outside and outside == pytest.approx(1000 / 65535, abs=1e-6)  # no 8-bit round trip
    assert torch.equal(torch.as_tensor(mask)[8:20, 10:30], torch.ones(12, 20, dtype=torch.as_tensor(mask).dtype))
