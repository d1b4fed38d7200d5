"""How many CPU threads torch may use: the CPUs this process may run on, minus the ones other
processes keep busy.

torch sizes its thread pool from the machine's cores. On a shared machine that oversubscribes:
OpenMP threads wait for each other at every parallel region while another process holds their
core, and work slows down far more than the lost share (measured on 2 cores with one busy
competitor: a training step 3.2× slower with 2 threads, 1.4× with 1; see ``benchmarks/bench_threads.py``).
The command line applies :func:`configure_threads` before each command: by default the CPUs this
process may use (deterministic, so a resumed run computes exactly as the original);
``--threads auto`` also subtracts the CPUs other processes keep busy at start (faster on a shared
machine, but the thread count — and so the last bits of floating-point reductions — then depends on
the load); ``--threads N`` or ``TRANSFERKIT_THREADS`` fix it. The Python API leaves torch's setting
alone unless asked.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path


def allowed_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (containers)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else max(1, cpus)


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup's CPU limit in CPUs (v2 ``cpu.max``, v1 ``cfs_quota_us / cfs_period_us``), if any."""
    v2 = root / "cpu.max"
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.is_file():
            quota_us = int(v1.read_text())
            period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None


def _cpu_times() -> tuple[float, float] | None:
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields), idle


def busy_cpus(interval: float = 0.1) -> float:
    """CPUs kept busy by other processes, sampled over ``interval`` seconds (0 where /proc is absent)."""
    before = _cpu_times()
    if before is None:
        return 0.0
    time.sleep(interval)
    after = _cpu_times()
    if after is None or after[0] <= before[0]:
        return 0.0
    busy_fraction = 1.0 - (after[1] - before[1]) / (after[0] - before[0])
    return max(0.0, busy_fraction) * (os.cpu_count() or 1)


def _share(cpus: float) -> int:
    """This process's share of ``cpus``: all of them, or 1/K under ``torchrun --nproc_per_node K`` (at least 1)."""
    local = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return max(1, int(cpus) // max(1, int(local) if local.isdigit() else 1))


def threads_for(requested: int | str | None = None) -> int:
    """Threads for ``requested`` (else ``TRANSFERKIT_THREADS``): a number; ``"auto"``: the allowed CPUs
    minus the busy ones (at least 1); ``None``: the allowed CPUs. Under ``torchrun`` the processes on
    one machine share them."""
    from transferkit.errors import ConfigError

    if requested is None:
        requested = os.environ.get("TRANSFERKIT_THREADS") or None
    if requested is None:
        return _share(allowed_cpus())
    if str(requested).strip().lower() == "auto":
        return _share(allowed_cpus() - round(busy_cpus()))
    if not str(requested).strip().isdigit() or int(requested) < 1:
        raise ConfigError(f"--threads must be a positive number or auto, got {requested!r}.")
    return int(requested)


def configure_threads(requested: int | str | None = None) -> int:
    """Set torch's intra-op threads by :func:`threads_for`; returns the number set.

    Data-loader workers need nothing: PyTorch starts each worker with one thread.
    """
    import torch

    threads = threads_for(requested)
    torch.set_num_threads(threads)
    return threads
