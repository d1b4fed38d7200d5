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


FAILING_RANK = """
import os
if os.environ.get("RANK") == "1":
    import transferkit.engine.distributed as distributed

    def broken(*args, **kwargs):
        raise RuntimeError("rank 1 lost its disk")
        yield

    distributed.map_batches = broken
"""


@pytest.mark.slow
def test_a_rank_that_dies_fails_the_run_and_leaves_no_output(tmp_path):
    data = write_class_images(tmp_path / "data", per_class=7)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAILING_RANK)  # runs at start-up in every process
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{hook}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = tmp_path / "out" / "features.npy"
    out.parent.mkdir()
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run = subprocess.run([*torchrun, "-m", "transferkit", "extract", str(data), *ARGS, "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert run.returncode != 0
    assert "rank 1 lost its disk" in run.stderr
    assert list(out.parent.iterdir()) == []  # no features, labels, paths or temporary file
