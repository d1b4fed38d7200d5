"""The disk-backed feature cache (``cache_dir``): reuse across runs, keys that change with any input,
memory-mapped entries past ``cache_max_gb``, and errors that leave nothing half-written."""

from __future__ import annotations

import errno
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from transferkit.api import train_classifier
from transferkit.data import ImageFileDataset, TensorImageDataset, WithTransform
from transferkit.data.fingerprint import fingerprint, is_random
from transferkit.data.transforms import build_transforms
from transferkit.engine import feature_store
from transferkit.engine.feature_store import FeatureStore
from transferkit.errors import ConfigError

from .helpers import config, quiet, tiny_data


def entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def run(strategy: str, cache_dir: Path | None, logs: list[str] | None = None, **options):
    torch.manual_seed(0)  # the same tiny backbone weights in every run
    backbone, data = tiny_data()
    cfg = config(epochs=3, head_solver="sgd", cache_dir=str(cache_dir) if cache_dir else None, **options)
    strategy_options = {"groups": 1} if strategy == "partial" else None
    log = logs.append if logs is not None else quiet
    return train_classifier(data, backbone, strategy, cfg, strategy_options=strategy_options, log=log)


def test_a_second_run_reads_the_features_from_disk_and_trains_identically(tmp_path):
    memory = run("feature-extraction", None)
    first = run("feature-extraction", tmp_path)
    logs: list[str] = []
    second = run("feature-extraction", tmp_path, logs)
    assert first.extra["cache_reused_images"] == 0
    assert second.extra["cache_reused_images"] == 24 + 12  # train view + validation set, read not computed
    assert any("read from" in line for line in logs)
    assert len(entries(tmp_path)) == 2  # one entry for the train view, one for validation
    for result in (first, second):
        assert [r["val_loss"] for r in result.history] == [r["val_loss"] for r in memory.history]


def test_past_cache_max_gb_the_frozen_bottom_is_memory_mapped_from_disk(tmp_path, monkeypatch):
    memory = run("partial", None)
    modes = []
    load = np.load

    def recording_load(file, mmap_mode=None):
        modes.append(mmap_mode)
        return load(file, mmap_mode)

    monkeypatch.setattr(feature_store.np, "load", recording_load)
    logs: list[str] = []
    mapped = run("partial", tmp_path, logs, cache_max_gb=0.0)  # any size is too big for RAM
    assert any("memory-mapped" in line for line in logs)
    assert "c" in modes and all(m in ("c", None) for m in modes)  # features mapped (copy-on-write), labels read
    assert all(r["cached"] for r in mapped.history)
    assert [r["val_loss"] for r in mapped.history] == pytest.approx([r["val_loss"] for r in memory.history], abs=1e-6)
    without_dir = run("partial", None, cache_max_gb=0.0)  # no disk: the cache is skipped, as before
    assert not any(r["cached"] for r in without_dir.history)


def test_the_stored_outputs_are_the_frozen_bottoms_outputs(tmp_path):
    run("partial", tmp_path)
    torch.manual_seed(0)
    backbone, data = tiny_data()
    bottom = backbone.split(len(backbone.layer_groups()) - 1).bottom.eval()
    images = torch.stack([data.val[i][0] for i in range(len(data.val))])
    with torch.no_grad():
        expected = bottom(images).numpy()
    stored = [np.load(e / "features.npy") for e in entries(tmp_path)]
    matching = [s for s in stored if s.shape == expected.shape]
    assert matching and np.allclose(matching[0], expected, atol=1e-5)


def test_the_key_changes_with_weights_pixels_files_and_transforms(tmp_path):
    images = torch.rand(6, 3, 8, 8)
    labels = torch.tensor([0, 1, 0, 1, 0, 1])
    base = fingerprint(TensorImageDataset(images, labels))
    changed = images.clone()
    changed[3, 1, 2, 2] += 0.01
    assert fingerprint(TensorImageDataset(changed, labels)) != base
    assert fingerprint(TensorImageDataset(images, labels.flip(0))) != base
    assert fingerprint(TensorImageDataset(images.clone(), labels.clone())) == base  # content, not identity
    resize = build_transforms("none", 8, (0.5,) * 3, (0.2,) * 3, train=False)
    other = build_transforms("none", 12, (0.5,) * 3, (0.2,) * 3, train=False)
    dataset = TensorImageDataset(images, labels)
    assert fingerprint(WithTransform(dataset, resize)) != fingerprint(WithTransform(dataset, other))
    assert not is_random(WithTransform(dataset, resize))
    assert is_random(WithTransform(dataset, build_transforms("light", 8, (0.5,) * 3, (0.2,) * 3, train=True)))

    path = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    files = ImageFileDataset([(path, 0)])
    before = fingerprint(files)
    Image.fromarray(np.full((9, 9), 255, np.uint8)).save(path)  # same name, new content
    assert fingerprint(files) != before

    w1 = feature_store.weights_digest(torch.nn.Linear(3, 2))
    assert w1 != feature_store.weights_digest(torch.nn.Linear(3, 2))  # other random weights


def test_an_entry_made_for_other_inputs_is_never_reused(tmp_path):
    store = FeatureStore(tmp_path)
    parts = {"format": 1, "rows": 2, "versions": ["0.1.0"]}
    store.save(parts, torch.ones(2, 3), torch.tensor([0, 1]))
    features, labels = store.load(parts, memory_mapped=True)
    assert features.tolist() == [[1.0] * 3] * 2 and labels.tolist() == [0, 1]
    meta = store.path(parts) / "meta.json"
    meta.write_text(json.dumps({**parts, "versions": ["0.0.9"]}))  # e.g. written by another version
    with pytest.warns(UserWarning, match="other inputs"):
        assert store.load(parts, memory_mapped=False) is None
    assert not store.path(parts).exists()


def test_a_cache_dir_that_cannot_be_written_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"--cache-dir .*a-file.* not a folder transferkit can write to"):
        FeatureStore(blocker / "cache")


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    store = FeatureStore(tmp_path)
    monkeypatch.setattr(feature_store.shutil, "disk_usage", lambda _p: type("U", (), {"free": 10})())
    writer = store.writer({"rows": 4}, 4)
    with pytest.raises(ConfigError, match="no room for a .* GB feature cache entry"):
        writer.add(torch.ones(2, 3), torch.tensor([0, 1]))
    assert list(tmp_path.iterdir()) == []


class FullDisk:
    """A file whose writes fail as on a full disk."""

    def write(self, _data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        pass


def test_a_write_failing_midway_leaves_no_entry(tmp_path):
    store = FeatureStore(tmp_path)
    writer = store.writer({"rows": 4}, 4)
    writer.add(torch.ones(2, 3), torch.tensor([0, 1]))
    writer.handle.close()
    writer.handle = FullDisk()  # the disk fills up after the first batch
    with pytest.raises(ConfigError, match="no room"):
        writer.add(torch.ones(2, 3), torch.tensor([0, 1]))
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_extraction_leaves_no_entry(tmp_path):
    torch.manual_seed(0)
    backbone, data = tiny_data()
    from transferkit.engine.cache import FeatureCache
    from transferkit.engine.distributed import local_fabric

    cache = FeatureCache(local_fabric(), backbone, [data.train_eval], data.val, 4, 0, False, False, None,
                         FeatureStore(tmp_path))  # fmt: skip
    seen = {"n": 0}
    original = backbone.forward_features

    def dies_on_third_batch(images):
        seen["n"] += 1
        if seen["n"] == 3:
            raise KeyboardInterrupt("killed")
        return original(images)

    backbone.forward_features = dies_on_third_batch
    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        cache.train(0)
    assert list(tmp_path.iterdir()) == []
    backbone.forward_features = original
    features, _ = cache.train(0)
    assert len(features) == 24 and len(entries(tmp_path)) == 1


def test_the_same_weights_computing_other_features_are_not_reused(tmp_path):
    """A multi-depth view has the plain backbone's name and weights but other features: a new entry."""
    from transferkit.backbones.multi_depth import MultiDepthBackbone, group_names

    plain = run("feature-extraction", tmp_path)
    torch.manual_seed(0)
    backbone, data = tiny_data()
    wide = MultiDepthBackbone(backbone, group_names(backbone))
    cfg = config(epochs=3, head_solver="sgd", cache_dir=str(tmp_path))
    result = train_classifier(data, wide, "feature-extraction", cfg, log=quiet)
    assert plain.extra["cache_reused_images"] == 0 and result.extra["cache_reused_images"] == 0
    widths = sorted(np.load(e / "features.npy", mmap_mode="r").shape[1] for e in entries(tmp_path))
    assert widths == sorted([backbone.num_features] * 2 + [wide.num_features] * 2)
