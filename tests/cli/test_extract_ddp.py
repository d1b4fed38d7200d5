"""``torchrun -m transferkit extract``: two gloo processes write the same features as one (issue 12)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from ..conftest import write_class_images

ARGS = ["--backbone", "resnet18", "--weights", "none", "--image-size", "32", "--batch-size", "4"]


@pytest.mark.slow
def test_two_processes_extract_what_one_does_into_one_file(tmp_path):
    data = write_class_images(tmp_path / "data", per_class=7)  # 21 images: the shards are uneven
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = [sys.executable, "-m", "transferkit", "extract", str(data), *ARGS, "--out", str(tmp_path / "one.npy")]
    run = subprocess.run(one, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    two = [*torchrun, "-m", "transferkit", "extract", str(data), *ARGS, "--out", str(tmp_path / "two.npy")]
    run = subprocess.run(two, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy"), atol=1e-5)
    assert (np.load(tmp_path / "one_labels.npy") == np.load(tmp_path / "two_labels.npy")).all()
    assert (tmp_path / "one_paths.csv").read_text() == (tmp_path / "two_paths.csv").read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left
