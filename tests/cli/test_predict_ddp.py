"""``torchrun -m transferkit predict``: two gloo processes write the CSV one process writes (issue 12)."""

import csv
import os
import subprocess
import sys

import pytest

from transferkit.cli.main import app

from .test_cli import TINY, runner


@pytest.mark.slow
def test_two_processes_predict_what_one_does_into_one_csv(image_folder, tmp_path):
    fitted = runner.invoke(
        app, ["fit", str(image_folder), *TINY, "--strategy", "feature-extraction", "--out", str(tmp_path / "run")]
    )
    assert fitted.exit_code == 0, fitted.output
    model = str(tmp_path / "run" / "best.pt")
    (image_folder / "a" / "junk.png").write_bytes(b"junk")  # listed with its error, in its place
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    predict = ["-m", "transferkit", "predict", model, str(image_folder), "--batch-size", "4"]
    one = subprocess.run([sys.executable, *predict, "--out", str(tmp_path / "one.csv")], capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    two = subprocess.run([*torchrun, *predict, "--out", str(tmp_path / "two.csv")], capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    rows_one = list(csv.DictReader((tmp_path / "one.csv").open()))
    rows_two = list(csv.DictReader((tmp_path / "two.csv").open()))
    assert len(rows_one) == 25 and sum(bool(r["error"]) for r in rows_one) == 1  # 24 images + the junk file
    assert [(r["path"], r["prediction"], r["error"]) for r in rows_one] == [
        (r["path"], r["prediction"], r["error"]) for r in rows_two
    ]
    for a, b in zip(rows_one, rows_two):
        assert float(a["probability"] or 0) == pytest.approx(float(b["probability"] or 0), abs=1e-5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
