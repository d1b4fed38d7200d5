"""Run a function over a dataset in shards across processes and gather the results in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch
from lightning_fabric import Fabric
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from transferkit.data.sampler import EpochSampler
from transferkit.engine.config import TrainConfig, resolve_precision
from transferkit.engine.progress import batch_bar

T = TypeVar("T")
R = TypeVar("R")


def make_fabric(config: TrainConfig) -> Fabric:
    """A Fabric for this config: DDP when several devices or processes (e.g. under ``torchrun``)."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = config.devices > 1 or config.num_nodes > 1 or world > 1
    devices = config.devices if world == 1 else max(config.devices, world // max(1, config.num_nodes))
    fabric = Fabric(
        accelerator=config.accelerator,
        devices=devices,
        num_nodes=config.num_nodes,
        strategy="ddp" if distributed else "auto",
        precision=resolve_precision(config.precision, config.accelerator),  # type: ignore[arg-type]
    )
    fabric.launch()
    return fabric


def close_process_group() -> None:
    """Destroy the default process group, if one was started (e.g. under ``torchrun``).

    Call it once a command has succeeded on this rank: a process that exits with a live gloo group
    can abort during interpreter shutdown (its worker threads outlive the interpreter; PyTorch asks
    every program to call ``destroy_process_group`` before it exits). Not after a failure: a rank
    that destroys its group while the others still wait in a collective can hang them.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_fabric(device: torch.device | str = "cpu", precision: str = "32-true") -> Fabric:
    """A one-process Fabric on ``device`` (for methods that train on one device, even under ``torchrun``)."""
    device = torch.device(device)
    index = [device.index] if device.index is not None else 1
    return Fabric(accelerator=device.type, devices=index, precision=precision)  # type: ignore[arg-type]


def map_batches(
    fabric: Fabric,
    dataset: Dataset,
    fn: Callable[[Tensor], Tensor],
    batch_size: int,
    num_workers: int = 0,
    progress: str | None = None,
    timing: dict[str, float] | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """``fn`` over this process's shard of ``dataset`` (rank r: positions r, r+w, …), batch by batch.

    Yields (outputs, labels) on CPU. ``timing`` (a dict) gets ``data_seconds`` added once the
    shard is done: the time spent waiting for batches (loading, decoding, resizing).
    """
    from transferkit.engine.trainer import TimedIterator

    sampler = EpochSampler(len(dataset), shuffle=False, rank=fabric.global_rank, world_size=fabric.world_size)
    loader = fabric.setup_dataloaders(
        DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers),
        use_distributed_sampler=False,
    )
    batches = loader
    if progress and fabric.is_global_zero:
        batches = batch_bar(loader, progress)
    timed = TimedIterator(batches)
    for images, targets in timed:
        yield fn(images).float().cpu(), targets.cpu()
    if timing is not None:
        timing["data_seconds"] = timing.get("data_seconds", 0.0) + timed.waited


def ordered_map(
    fabric: Fabric,
    dataset: Dataset,
    fn: Callable[[Tensor], Tensor],
    batch_size: int,
    num_workers: int = 0,
    progress: str | None = None,
    timing: dict[str, float] | None = None,
) -> tuple[Tensor, Tensor]:
    """``fn`` over every image of ``dataset``, each process a shard (see :func:`map_batches`).

    Returns (outputs, labels) on CPU, in dataset order, on every process.
    """
    shard = -(-len(dataset) // fabric.world_size)  # rows of this process (see EpochSampler)
    out = lab = torch.empty(0)
    at = 0
    for outputs, labels in map_batches(fabric, dataset, fn, batch_size, num_workers, progress, timing):
        if at == 0:  # filled in place: no list of batches, no second copy to concatenate them
            out = torch.empty((shard, *outputs.shape[1:]), dtype=outputs.dtype)
            lab = torch.empty(shard, dtype=labels.dtype)
        out[at : at + len(outputs)], lab[at : at + len(labels)] = outputs, labels
        at += len(outputs)
    if fabric.world_size > 1:  # rank r holds positions r, r+w, …: interleave back
        out = fabric.all_gather(out.to(fabric.device)).cpu()
        lab = fabric.all_gather(lab.to(fabric.device)).cpu()
        out = out.transpose(0, 1).reshape(-1, *out.shape[2:])
        lab = lab.transpose(0, 1).reshape(-1)
    return out[: len(dataset)], lab[: len(dataset)]


def sharded(fabric: Fabric, items: Sequence[T], fn: Callable[[Sequence[T]], list[R]]) -> list[R]:
    """``fn`` over this process's share of ``items`` (positions r, r+w, …); every process gets all the
    results, in the order of ``items``. A rank that fails makes the others fail at the gather."""
    rank, world = fabric.global_rank, fabric.world_size
    mine = fn(items[rank::world])
    if world == 1:
        return mine
    import torch.distributed as dist

    parts: list[list[R] | None] = [None] * world
    dist.all_gather_object(parts, mine)
    merged: list[R] = [None] * len(items)  # type: ignore[list-item]
    for r, part in enumerate(parts):
        merged[r::world] = part
    return merged


def dataset_logits(
    fabric: Fabric,
    model: Callable[[Tensor], Tensor],
    dataset: Dataset,
    batch_size: int,
    num_workers: int = 0,
    channels_last: bool = True,
) -> tuple[Tensor, Tensor]:
    """(logits, labels) of ``model`` over ``dataset`` under ``inference_mode`` and the run's autocast."""

    def run(images: Tensor) -> Tensor:
        if channels_last and images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), fabric.autocast():
            return model(images)

    return ordered_map(fabric, dataset, run, batch_size, num_workers)
