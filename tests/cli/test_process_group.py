"""Under ``torchrun`` the CLI closes its process group once a command succeeded, and only then.

A rank that exits with a live gloo group can abort while the interpreter shuts down (seen in CI:
``terminate called without an active exception`` from the rank that finished first); destroying the
group after a failure could instead hang ranks still waiting in a collective.
"""

import sys

import pytest
import torch.distributed as dist

from transferkit.cli.main import main


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def run_cli(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["transferkit", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code or 0


def test_a_command_that_succeeds_closes_the_process_group(process_group, monkeypatch):
    assert dist.is_initialized()
    assert run_cli(monkeypatch, "info") == 0
    assert not dist.is_initialized()


def test_a_command_that_fails_leaves_the_process_group_alone(process_group, monkeypatch):
    assert run_cli(monkeypatch, "info", "--no-such-option") == 2
    assert dist.is_initialized()
