"""A training process killed with SIGKILL mid-epoch resumes with nothing lost: the resumed
run's metrics and weights match an uninterrupted run's."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from transferkit.engine.checkpoint import load_checkpoint

from ..conftest import write_class_images

ARGS = (
    "--backbone resnet18 --weights none --image-size 32 --precision 32-true --no-progress --strategy fine-tune "
    "--epochs 4 --batch-size 4 --lr 0.003 --preset light --seed 3"
).split()


def _fit(data, out, *extra):
    cmd = [sys.executable, "-m", "transferkit", "fit", str(data), *ARGS, "--out", str(out), *extra]
    return subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "PYTHONHASHSEED": "0"}
    )


def _rows(out):
    with open(out / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = write_class_images(tmp_path / "data", per_class=20)
    full = _fit(data, tmp_path / "full")
    victim = _fit(data, tmp_path / "killed")
    checkpoint = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert victim.poll() is None, "the run finished before it could be killed; make it longer"
    time.sleep(0.15)  # into the next epoch
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    done = load_checkpoint(checkpoint)["epoch"]  # the atomically written checkpoint is intact
    assert done < 3
    resumed = _fit(data, tmp_path / "killed", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    assert full.wait(timeout=300) == 0, full.stderr.read().decode()
    a, b = _rows(tmp_path / "full"), _rows(tmp_path / "killed")
    assert len(a) == len(b) == 4
    for key in ("train_loss", "val_loss", "val_acc"):
        assert [float(r[key]) for r in a] == pytest.approx([float(r[key]) for r in b], abs=1e-5), key
    wa = load_checkpoint(tmp_path / "full" / "last.pt")["state_dict"]
    wb = load_checkpoint(tmp_path / "killed" / "last.pt")["state_dict"]
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-5) for k in wa)
