"""Progressive neural networks (Rusu et al., 2016): one column per task, earlier columns frozen.

A column is a copy of the pretrained backbone's top ``groups`` layer groups plus a head for
its task's classes; every column reads the same frozen bottom (computed once per image).
Lateral adapters feed each earlier column's activations into the new column: into the input
of each of its layer groups after the first (1×1 convolution → ReLU → 1×1 convolution) and
into its head (linear → ReLU → linear). Their last layer starts at zero, so a new column
begins as the pretrained copy and learns how much of the old columns to use.

Old columns and their adapters never train again and run in eval mode, so a finished task's
outputs are bit-identical after any number of new tasks: zero forgetting by construction.
The price: the task must be known at test time to pick its column (task-aware protocol), and
the network grows by one column per task.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.backbones.base import ModelBackbone
from transferkit.continual.base import ContinualMethod, continual_methods
from transferkit.continual.runner import ContinualResult, Task, summarize
from transferkit.engine.distributed import local_fabric
from transferkit.engine.trainer import StepOutput, Trainer, TrainingTask
from transferkit.errors import ConfigError
from transferkit.seeding import derive_seed


@continual_methods.register("progressive")
class Progressive(ContinualMethod):
    """Marker entry: progressive networks grow columns over the backbone's layers, so they run in
    :func:`run_progressive`, not in the shared-head trainer."""

    name = "progressive"
    columns = True


def column_segments(backbone: ModelBackbone, groups: int) -> tuple[nn.Module, list[nn.Module]]:
    """(frozen bottom, one module per top layer group) of ``backbone``, each verified to chain.

    Raises:
        ConfigError: naming the backbone when its top ``groups`` layer groups are not a verified
            chain of modules with image-like (N, C, H, W) outputs between them.
    """
    names = [name for name, _ in backbone._groups]
    if not 1 <= groups < len(names):
        raise ConfigError(
            f"Progressive columns span 1 to {len(names) - 1} layer groups of {backbone.name}, got groups={groups}."
        )
    cuts = range(len(names) - groups, len(names))
    splits = [backbone.split(i) for i in cuts]
    failed = [names[i] for i, s in zip(cuts, splits) if s is None]
    if failed:
        raise ConfigError(
            f"{backbone.name} cannot take lateral adapters: its network cannot be cut into layer groups before "
            f"{', '.join(failed)} (its modules do not run one after another, as in a ViT that adds tokens in code). "
            "Progressive networks need a CNN such as efficientnet_lite0 or resnet18; use another --backbone or "
            "another continual method."
        )
    tops = [list(s.top) for s in splits]
    segments = [nn.Sequential(*top[: len(top) - len(after)]) for top, after in zip(tops, tops[1:])]
    segments.append(splits[-1].top)
    _check_maps(backbone, splits[0].bottom, segments)
    return splits[0].bottom, segments


def _check_maps(backbone: ModelBackbone, bottom: nn.Module, segments: Sequence[nn.Module]) -> None:
    shapes = segment_shapes(bottom, segments, backbone.data_config.input_size)
    for i, shape in enumerate(shapes[:-1]):
        if len(shape) != 4:
            raise ConfigError(
                f"{backbone.name} cannot take lateral adapters: the output of its layer group "
                f"{len(backbone._groups) - len(segments) + i} has shape {shape}, not (N, C, H, W). "
                "Use a CNN backbone or another continual method."
            )


def _adapter(width: int, hidden: int, out: int, conv: bool) -> nn.Sequential:
    layer = nn.Conv2d if conv else nn.Linear
    kwargs = {"kernel_size": 1} if conv else {}
    last = layer(hidden, out, **kwargs)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(layer(width, hidden, **kwargs), nn.ReLU(), last)


class Column(nn.Module):
    """One task's layers (copies of the pretrained top groups), head, and adapters from ``previous`` columns."""

    def __init__(self, segments: Sequence[nn.Module], widths: Sequence[int], num_classes: int, previous: int) -> None:
        super().__init__()
        self.segments = nn.ModuleList(copy.deepcopy(list(segments)))
        self.head = nn.Linear(widths[-1], num_classes)
        # laterals[i][j]: column j's output of segment i -> input of segment i + 1 (the last: into the head)
        self.laterals = nn.ModuleList(
            nn.ModuleList(
                _adapter(w, max(w // 4, 8), w if i < len(widths) - 1 else num_classes, conv=i < len(widths) - 1)
                for _ in range(previous)
            )
            for i, w in enumerate(widths)
        )

    def forward(self, x: Tensor, earlier: Sequence[list[Tensor]]) -> tuple[Tensor, list[Tensor]]:
        """(logits, outputs of each segment) given the bottom's output and earlier columns' outputs."""
        outputs = []
        for i, segment in enumerate(self.segments):
            if i:
                x = x + sum(lateral(acts[i - 1]) for lateral, acts in zip(self.laterals[i - 1], earlier))
            x = segment(x)
            outputs.append(x)
        logits = self.head(x) + sum(lateral(acts[-1]) for lateral, acts in zip(self.laterals[-1], earlier))
        return logits, outputs


class ProgressiveNet(nn.Module):
    """Columns over a frozen bottom's outputs; ``forward(x, task)`` gives task ``task``'s logits."""

    def __init__(self, segments: Sequence[nn.Module], widths: Sequence[int]) -> None:
        super().__init__()
        self.template = list(segments)  # plain list: the pretrained layers each new column copies
        self.widths = list(widths)
        self.columns = nn.ModuleList()

    def add_column(self, num_classes: int) -> Column:
        """Freeze every existing column and append a trainable one for the next task."""
        for column in self.columns:
            column.requires_grad_(False)
        column = Column(self.template, self.widths, num_classes, previous=len(self.columns)).requires_grad_(True)
        self.columns.append(column)
        return column

    def train(self, mode: bool = True) -> ProgressiveNet:
        """Batch-norm statistics stay the pretrained ones in every column (they never train)."""
        return super().train(False)

    def forward(self, x: Tensor, task: int | None = None) -> Tensor:
        """Logits of column ``task`` (default: the newest) over its task's classes."""
        return self.column_logits(x, len(self.columns) - 1 if task is None else task)[-1]

    def column_logits(self, x: Tensor, upto: int) -> list[Tensor]:
        """Logits of columns ``0..upto`` in one pass; only the newest column records gradients."""
        earlier: list[list[Tensor]] = []
        logits = []
        for t, column in enumerate(self.columns[: upto + 1]):
            with torch.set_grad_enabled(torch.is_grad_enabled() and t == len(self.columns) - 1):
                out, outputs = column(x, earlier)
            earlier.append(outputs)
            logits.append(out)
        return logits


def segment_shapes(bottom: nn.Module, segments: Sequence[nn.Module], size: int) -> list[tuple[int, ...]]:
    """Shape of each segment's output on one zero image of side ``size`` (the modules are put in eval mode)."""
    param = next(bottom.parameters())
    x = torch.zeros(1, 3, size, size, dtype=param.dtype, device=param.device)
    shapes = []
    with torch.no_grad():
        x = bottom.eval()(x)
        for segment in segments:
            x = segment.eval()(x)
            shapes.append(tuple(x.shape))
    return shapes


def segment_widths(bottom: nn.Module, segments: Sequence[nn.Module], size: int) -> list[int]:
    """Channel (or feature) width of each segment's output, measured on one zero image."""
    return [shape[1] for shape in segment_shapes(bottom, segments, size)]


class _ColumnTask(TrainingTask):
    """Training of the newest column on one task's bottom outputs (cross-entropy over the task's classes)."""

    def __init__(self, net: ProgressiveNet, task: Task, lr: float, batch_size: int) -> None:
        self.net, self.task, self.batch_size = net, task, batch_size
        self.classes = torch.unique(task.train_y)
        self.lr, self.name = lr, f"continual (progressive, {task.name})"

    def setup(self, trainer: Trainer) -> None:
        column = self.net.columns[-1]
        groups = [
            {"params": list(column.segments.parameters()), "lr": self.lr * 0.1},  # pretrained layers: gently
            {"params": [*column.head.parameters(), *column.laterals.parameters()], "lr": self.lr},
        ]
        self.module, self.optimizer = trainer.setup(self.net, torch.optim.AdamW(groups, weight_decay=1e-4))

    def batches(self, epoch: int) -> list[Tensor]:
        return torch.randperm(len(self.task.train_y)).split(self.batch_size)  # seeded by the trainer

    def training_step(self, idx: Tensor) -> StepOutput:
        y = torch.searchsorted(self.classes, self.task.train_y[idx])
        logits = self.module(self.task.train_x[idx])
        return StepOutput(F.cross_entropy(logits, y), len(y), logits, y)

    def validate(self, epoch: int) -> dict[str, float]:
        return {}


def run_progressive(
    tasks: Sequence[Task],
    segments: Sequence[nn.Module],
    widths: Sequence[int],
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> tuple[ContinualResult, ContinualResult]:
    """Learn ``tasks`` (whose inputs are the frozen bottom's outputs) one column each.

    Returns two results over the same network: task-aware (each task's test images scored by its
    own column over its own classes; the protocol progressive networks are made for) and
    class-incremental (no task id: every column's logits side by side, argmax over all seen classes).
    """
    torch.manual_seed(seed)
    started = time.perf_counter()
    net = ProgressiveNet(segments, widths)
    fabric = local_fabric("cpu")
    aware, blind = np.zeros((len(tasks), len(tasks))), np.zeros((len(tasks), len(tasks)))
    for t, task in enumerate(tasks):
        net.add_column(len(torch.unique(task.train_y)))
        Trainer(fabric, seed=derive_seed(seed, t), log=log).fit(_ColumnTask(net, task, lr, batch_size), epochs)
        aware[t, : t + 1], blind[t, : t + 1] = progressive_accuracies(net, tasks[: t + 1])
        log(f"progressive: after task {t + 1} ({task.name}) task-aware accuracy {np.round(aware[t, : t + 1], 3)}")
    seconds = time.perf_counter() - started
    return summarize("progressive (task-aware)", aware, seconds), summarize("progressive (no task id)", blind, seconds)


@torch.no_grad()
def progressive_accuracies(net: ProgressiveNet, tasks: Sequence[Task]) -> tuple[list[float], list[float]]:
    """(task-aware, class-incremental) test accuracy on each of ``tasks`` (one column each, in order)."""
    net.eval()
    classes = [torch.unique(task.train_y) for task in tasks]
    aware, blind = [], []
    for t, task in enumerate(tasks):
        logits = net.column_logits(task.test_x, len(tasks) - 1)
        own = classes[t][logits[t].argmax(1)]
        anyone = torch.cat(classes)[torch.cat(logits, dim=1).argmax(1)]
        aware.append(float((own == task.test_y).float().mean()))
        blind.append(float((anyone == task.test_y).float().mean()))
    return aware, blind
