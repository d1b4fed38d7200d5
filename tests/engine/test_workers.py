"""Loader workers persist across epochs, and the batches do not depend on them: each item is drawn
with a seed of (seed, epoch, index), so any worker count and a resumed run give the same training."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from transferkit.api import make_data, train_classifier
from transferkit.data import TensorImageDataset

from ..conftest import make_tiny_backbone
from .helpers import config, dying_log, quiet


class PidRecording(TensorImageDataset):
    """Touches ``<folder>/<pid>`` for every image it decodes: which processes loaded images."""

    def __init__(self, images, labels, folder: Path) -> None:
        super().__init__(images, labels)
        self.folder = folder

    def raw(self, index: int):
        (self.folder / str(os.getpid())).touch()
        return super().raw(index)


def fit(tmp_path: Path, workers: int, out: Path | None = None, resume: bool = False, log=quiet, epochs: int = 3):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(8)
    images = torch.rand(len(labels), 3, 16, 16, generator=generator) * 0.4
    images[torch.arange(len(labels)), labels % 3] += 0.5
    pids = tmp_path / "pids"
    pids.mkdir(parents=True, exist_ok=True)
    train = PidRecording(images, labels, pids)
    val = TensorImageDataset(images[::2].clone(), labels[::2].clone())
    backbone = make_tiny_backbone()
    data = make_data(train, val, ["a", "b", "c"], backbone.data_config, preset="light")  # random crops + flips
    cfg = config(epochs=epochs, num_workers=workers)
    result = train_classifier(data, backbone, "fine-tune", cfg, out=out, resume=resume, log=log)
    return result, {p.name for p in pids.iterdir()}


def test_workers_start_once_per_run_not_once_per_epoch(tmp_path):
    _, pids = fit(tmp_path, workers=2)
    assert len(pids) == 2 and str(os.getpid()) not in pids  # 3 epochs, the same 2 worker processes


def test_the_number_of_workers_does_not_change_training(tmp_path):
    one, _ = fit(tmp_path / "one", workers=1)
    two, _ = fit(tmp_path / "two", workers=2)
    assert [r["train_loss"] for r in one.history] == [r["train_loss"] for r in two.history]
    assert [r["val_loss"] for r in one.history] == [r["val_loss"] for r in two.history]


def test_a_resumed_run_with_workers_continues_exactly(tmp_path):
    full, _ = fit(tmp_path / "a", workers=2, out=tmp_path / "full")
    killed = tmp_path / "killed"
    try:
        fit(tmp_path / "b", workers=2, out=killed, log=dying_log(2))
    except KeyboardInterrupt:
        pass
    resumed, _ = fit(tmp_path / "c", workers=2, out=killed, resume=True)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
