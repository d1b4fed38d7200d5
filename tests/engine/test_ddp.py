"""Two gloo processes under torchrun train exactly like one process with the doubled batch."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

SCRIPT = textwrap.dedent("""
    import json, sys, torch
    sys.path.insert(0, sys.argv[3])
    from tests.engine.helpers import config, quiet, tiny_data
    from tests.conftest import make_tiny_backbone
    from transferkit.api import train_classifier
    strategy, batchnorm = sys.argv[4], sys.argv[5] == "bn"
    torch.manual_seed(0)
    backbone = make_tiny_backbone(batchnorm=batchnorm)
    _, data = tiny_data(n_per_class=8)
    cfg = config(epochs=3, batch_size=int(sys.argv[1]), scheduler="none", optimizer="sgd", lr=0.05)
    options = {"probe_epochs": 1} if strategy == "lp-ft" else {}
    result = train_classifier(data, backbone, strategy, cfg, strategy_options=options, log=quiet)
    import torch.distributed as dist
    if not dist.is_initialized() or dist.get_rank() == 0:
        torch.save(result.model.state_dict(), sys.argv[2])
        print(json.dumps(result.history))
""")


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy, batchnorm",
    # LP-FT: two stages (a probe solved on features cached across ranks, then every layer with BatchNorm
    # statistics frozen), so BatchNorm cannot tell one process from two
    [("fine-tune", "no-bn"), ("lp-ft", "bn")],
)
def test_ddp_two_processes_match_single_process(tmp_path, strategy, batchnorm):
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, str(script), "8", str(tmp_path / "one.pt"), root, strategy, batchnorm],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            "4",
            str(tmp_path / "two.pt"),
            root,
            strategy,
            batchnorm,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    for name in one:
        assert torch.allclose(one[name], two[name], atol=1e-5), name
    h1 = json.loads(single.stdout.strip().splitlines()[-1])
    h2 = json.loads(ddp.stdout.strip().splitlines()[-1])
    assert [r["val_acc"] for r in h1] == [r["val_acc"] for r in h2]
