"""Thread policy on shared CPUs: what the limits say, what overrides them, what workers get."""

import torch

from transferkit.engine import threads


def test_cgroup_quotas_are_read_in_cpus_for_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_quota(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_quota(v2) is None
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("300000")
    (v1 / "cpu.cfs_period_us").write_text("100000")
    assert threads._cgroup_quota(tmp_path / "v1") == 3.0
    (v1 / "cpu.cfs_quota_us").write_text("-1")
    assert threads._cgroup_quota(tmp_path / "v1") is None


def test_threads_default_to_the_allowed_cpus_auto_leaves_out_busy_ones_and_overrides_win(monkeypatch):
    import pytest

    from transferkit.errors import ConfigError

    monkeypatch.setattr(threads, "allowed_cpus", lambda: 8)
    monkeypatch.setattr(threads, "busy_cpus", lambda: 2.6)  # another process keeps ~3 CPUs busy
    monkeypatch.delenv("TRANSFERKIT_THREADS", raising=False)
    assert threads.threads_for() == 8  # deterministic by default: a resumed run computes as the original
    assert threads.threads_for("auto") == 5
    monkeypatch.setattr(threads, "busy_cpus", lambda: 12.0)
    assert threads.threads_for("auto") == 1  # never zero
    monkeypatch.setenv("TRANSFERKIT_THREADS", "3")
    assert threads.threads_for() == 3
    assert threads.threads_for(2) == 2 and threads.threads_for("2") == 2
    with pytest.raises(ConfigError, match="positive number or auto"):
        threads.threads_for("0")


def test_the_allowed_cpus_respect_the_affinity_mask():
    import os

    assert 1 <= threads.allowed_cpus() <= len(os.sched_getaffinity(0))


def test_data_loader_workers_run_one_thread_each():
    loader = torch.utils.data.DataLoader(_Threads(), batch_size=None, num_workers=1)
    assert [int(n) for n in loader] == [1]


class _Threads(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, index):
        return torch.get_num_threads()


def test_every_compute_command_takes_threads_and_sets_them(tmp_path):
    from typer.testing import CliRunner

    from transferkit.cli.main import COMMANDS, NO_COMPUTE, app

    runner = CliRunner()
    for name in sorted(set(COMMANDS) - NO_COMPUTE):
        assert "--threads" in runner.invoke(app, [name, "--help"]).output, name
    before = torch.get_num_threads()
    try:
        result = runner.invoke(app, ["predict", str(tmp_path / "missing.pt"), str(tmp_path), "--threads", "1"])
        assert result.exit_code != 0 and torch.get_num_threads() == 1  # set before the command ran (and failed)
    finally:
        torch.set_num_threads(before)


def test_processes_started_by_torchrun_share_the_cpus(monkeypatch):
    monkeypatch.setattr(threads, "allowed_cpus", lambda: 8)
    monkeypatch.delenv("TRANSFERKIT_THREADS", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.threads_for() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert threads.threads_for() == 1
