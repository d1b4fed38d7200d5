"""The one training loop's contract, on a task small enough to check by hand: least squares."""

import pytest
import torch
from lightning_fabric import Fabric
from torch import nn

from transferkit.engine.callbacks import BestWeights, Callback, Checkpointer, EarlyStopping
from transferkit.engine.state import TrainState
from transferkit.engine.trainer import StepOutput, Trainer, TrainingTask
from transferkit.errors import TrainingError


class LeastSquares(TrainingTask):
    """``mean((X w - y)²)`` by SGD on fixed batches; ``scripted`` replaces the validation loss."""

    name = "least-squares"

    def __init__(self, x, y, batch_size, lr=0.1, momentum=0.0, scripted=None, stages=None):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.net = nn.Linear(x.shape[1], 1, bias=False)
        torch.nn.init.zeros_(self.net.weight)
        self.lr, self.momentum, self.scripted, self.stages = lr, momentum, scripted, stages
        self.entered, self.snapshots = [], []

    def setup(self, trainer):
        optimizer = torch.optim.SGD(self.net.parameters(), lr=self.lr, momentum=self.momentum)
        self.module, self.optimizer = trainer.setup(self.net, optimizer)

    def stage_at(self, epoch):
        return 0 if self.stages is None else self.stages[epoch]

    def enter_stage(self, trainer, index):
        self.entered.append(index)

    def batches(self, epoch):
        order = torch.randperm(len(self.x))  # seeded by the trainer with (seed, epoch)
        return [(self.x[i], self.y[i]) for i in order.split(self.batch_size)]

    def training_step(self, batch):
        x, y = batch
        return StepOutput(((self.module(x).squeeze(1) - y) ** 2).mean(), len(y))

    def validate(self, epoch):
        self.snapshots.append(self.net.weight.detach().clone())
        with torch.no_grad():
            loss = float(((self.net(self.x).squeeze(1) - self.y) ** 2).mean())
        return {"val_loss": self.scripted[epoch] if self.scripted else loss}


def _data(n=8, d=3):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=generator), torch.randn(n, generator=generator)


def _trainer(callbacks=(), **kw):
    return Trainer(Fabric(accelerator="cpu", devices=1), callbacks, log=lambda _m: None, **kw)


def test_accumulated_half_batches_make_one_step_of_the_full_batch_gradient():
    x, y = _data()
    task = LeastSquares(x, y, batch_size=4, lr=0.1)
    task.batches = lambda epoch: [(x[:4], y[:4]), (x[4:], y[4:])]
    _trainer(grad_accum=2).fit(task, epochs=1)
    gradient = 2 / len(x) * x.T @ (x @ torch.zeros(3) - y)  # d/dw mean((Xw - y)²) at w = 0
    assert torch.allclose(task.net.weight.detach().squeeze(0), -0.1 * gradient, atol=1e-6)


def test_a_non_finite_loss_is_one_training_error_naming_the_task_epoch_and_batch():
    x, y = _data()
    y[5] = float("nan")
    task = LeastSquares(x, y, batch_size=4)
    task.batches = lambda epoch: [(x[:4], y[:4]), (x[4:], y[4:])]
    with pytest.raises(TrainingError, match=r"least-squares: the loss became nan at epoch 1, batch 2.*Lower --lr"):
        _trainer().fit(task, epochs=2)


def test_the_stage_switcher_enters_each_stage_once_when_it_changes():
    x, y = _data()
    task = LeastSquares(x, y, 4, stages=[0, 0, 1, 1, 1])
    state = _trainer().fit(task, epochs=5)
    assert task.entered == [0, 1]
    assert [row["stage"] for row in state.history] == [0, 0, 1, 1, 1]


def test_early_stopping_and_best_weights_follow_the_monitored_column():
    x, y = _data()
    task = LeastSquares(x, y, 4, scripted=[3.0, 2.0, 2.5, 2.6, 2.7, 1.0])
    state = _trainer([BestWeights(), EarlyStopping(patience=2)]).fit(task, 6, TrainState("val_loss", "min"))
    assert state.stopped_early and len(state.history) == 4  # epochs 3 and 4 did not beat epoch 2
    assert state.best_epoch == 1
    assert torch.equal(task.net.weight.detach(), task.snapshots[1])  # the best epoch's weights are back


class _KillAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_start(self, trainer, state):
        if state.epoch == self.epoch:
            raise KeyboardInterrupt("killed")


def test_any_task_resumes_exactly_from_its_checkpoint_with_the_optimizer_state(tmp_path):
    x, y = _data(n=12)
    full = LeastSquares(x, y, 4, lr=0.05, momentum=0.9)
    _trainer([Checkpointer(tmp_path / "full")]).fit(full, epochs=4)
    with pytest.raises(KeyboardInterrupt):
        _trainer([Checkpointer(tmp_path / "cut"), _KillAt(2)]).fit(LeastSquares(x, y, 4, lr=0.05, momentum=0.9), 4)
    resumed = LeastSquares(x, y, 4, lr=0.05, momentum=0.9)
    state = _trainer([Checkpointer(tmp_path / "cut", resume=True)]).fit(resumed, epochs=4)
    assert [row["epoch"] for row in state.history] == [0, 1, 2, 3]
    assert torch.equal(resumed.net.weight, full.net.weight)  # momentum buffers were restored too


def test_every_epoch_row_says_which_share_of_the_epoch_waited_for_data():
    import time

    from transferkit.api import train_classifier
    from transferkit.data import TensorImageDataset

    from .helpers import config, quiet, tiny_data

    class Slow(TensorImageDataset):
        def raw(self, index):
            time.sleep(0.03)  # a slow disk (slow enough to dominate the compute on a loaded 2-core machine)
            return super().raw(index)

    torch.manual_seed(0)
    backbone, data = tiny_data(n_per_class=8)
    fast = train_classifier(data, backbone, "fine-tune", config(epochs=1), log=quiet, report=False)
    data.train = type(data.train)(Slow(data.train.base.images, data.train.base._labels), data.train.transform)
    slow = train_classifier(data, backbone, "fine-tune", config(epochs=1), log=quiet, report=False)
    assert 0 <= fast.history[0]["data_wait_fraction"] < slow.history[0]["data_wait_fraction"] <= 1
    row = slow.history[0]
    waited = row["data_wait_fraction"] * row["epoch_seconds"]
    assert 0.72 <= waited + 0.002 <= row["epoch_seconds"]  # at least the 24 images × 30 ms of sleep
    data.train_eval = type(data.train_eval)(data.train.base, data.train_eval.transform)  # slow images, eval view
    frozen = train_classifier(data, backbone, "feature-extraction", config(epochs=1), log=quiet, report=False)
    assert frozen.extra["cache_data_wait_fraction"] > 0.5  # the extraction pass mostly waited for the slow disk
