"""Progressive networks: zero forgetting by construction, adapters that start silent, a clear refusal."""

import pytest
import torch
from torch import nn

from tests.conftest import make_tiny_backbone
from transferkit.backbones import DataConfig, ModelBackbone
from transferkit.backbones._grouping import find_layer_groups
from transferkit.continual import continual_methods, run_continual
from transferkit.continual.progressive import (
    ProgressiveNet,
    _ColumnTask,
    column_segments,
    run_progressive,
    segment_widths,
)
from transferkit.continual.runner import Task, class_incremental_tasks
from transferkit.engine.distributed import local_fabric
from transferkit.engine.trainer import Trainer
from transferkit.errors import ConfigError

QUIET = {"log": lambda _: None}


def _net(groups: int = 2):
    backbone = make_tiny_backbone()
    bottom, segments = column_segments(backbone, groups)
    return bottom, ProgressiveNet(segments, segment_widths(bottom, segments, 16))


def _tasks(bottom: nn.Module) -> list[Task]:
    """Four classes, two tasks; class c brightens one quadrant of the image (learnable by a small column)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat_interleave(24)
    images = torch.rand(len(y), 3, 16, 16, generator=g) * 0.3
    for c in range(4):
        r, col = divmod(c, 2)
        images[y == c, :, 8 * r : 8 * r + 8, 8 * col : 8 * col + 8] += 0.7
    with torch.no_grad():
        maps = bottom.eval()(images)
    train, test = torch.arange(len(y)) % 3 != 0, torch.arange(len(y)) % 3 == 0
    return class_incremental_tasks(maps[train], y[train], maps[test], y[test], 2, seed=0)


def _train_column(net: ProgressiveNet, task: Task, seed: int) -> None:
    net.add_column(len(torch.unique(task.train_y)))
    Trainer(local_fabric("cpu"), seed=seed, **QUIET).fit(_ColumnTask(net, task, 1e-2, 16), 3)


def test_old_columns_outputs_and_weights_are_bit_identical_after_learning_a_new_task():
    bottom, net = _net()
    first, second = _tasks(bottom)
    _train_column(net, first, 0)
    with torch.no_grad():
        before = net(first.test_x, 0).clone()
    weights = {k: v.clone() for k, v in net.columns[0].state_dict().items()}
    _train_column(net, second, 1)
    with torch.no_grad():
        assert torch.equal(net(first.test_x, 0), before)
    assert all(torch.equal(v, weights[k]) for k, v in net.columns[0].state_dict().items())
    trained = net.columns[1].laterals[-1][0][-1].weight
    assert trained.abs().sum() > 0  # the new column learned to use the old one (its adapter left zero)


def test_a_new_column_starts_as_the_pretrained_layers_because_its_adapters_start_at_zero():
    bottom, net = _net()
    first, _ = _tasks(bottom)
    _train_column(net, first, 0)
    column = net.add_column(3)
    with torch.no_grad():
        with_laterals = net(first.test_x, 1)
        alone, _ = column(first.test_x, [])
    assert torch.equal(with_laterals, alone)


def test_only_the_newest_column_receives_gradients():
    bottom, net = _net()
    first, _ = _tasks(bottom)
    net.add_column(2)
    net.add_column(2)
    net(first.train_x[:4]).sum().backward()
    assert all(p.grad is None for p in net.columns[0].parameters())
    assert all(not p.requires_grad for p in net.columns[0].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.columns[1].laterals.parameters())


def test_progressive_learns_both_tasks_without_forgetting_the_first():
    bottom, net = _net()
    tasks = _tasks(bottom)
    aware, blind = run_progressive(tasks, net.template, net.widths, epochs=8, batch_size=16, lr=1e-2, **QUIET)
    assert aware.forgetting == 0.0  # task-aware: each task's column is frozen once learned
    assert aware.accuracy_matrix[1, 0] == aware.accuracy_matrix[0, 0] > 0.9
    assert aware.accuracy_matrix[1, 1] > 0.9
    assert blind.method == "progressive (no task id)" and blind.accuracy_matrix.shape == (2, 2)


class _Residual(nn.Module):
    """Its forward adds a skip connection in code: the modules are not a chain."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.c = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        h = self.a(x)
        return self.pool(self.c(self.b(h) + h)).flatten(1)


def test_a_backbone_whose_groups_cannot_take_lateral_adapters_is_refused_by_name():
    net = _Residual()
    backbone = ModelBackbone("skip-net", net, 8, DataConfig(16, (0.5,) * 3, (0.25,) * 3), find_layer_groups(net))
    with pytest.raises(ConfigError, match="skip-net cannot take lateral adapters"):
        column_segments(backbone, 2)


def test_column_groups_out_of_range_are_refused():
    with pytest.raises(ConfigError, match="span 1 to"):
        column_segments(make_tiny_backbone(), 0)


def test_progressive_is_registered_but_not_run_by_the_shared_head_trainer():
    assert "progressive" in continual_methods.names()
    x, y = torch.randn(8, 4), torch.arange(2).repeat(4)
    with pytest.raises(ConfigError, match="run_progressive"):
        run_continual([Task("t", x, y, x, y)], "progressive", 2, **QUIET)
