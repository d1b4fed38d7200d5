"""Continual transfer: each method's mechanism, and forgetting measured on a task sequence."""

import numpy as np
import pytest
import torch
from torch import nn

from transferkit.continual import class_incremental_tasks, continual_methods, run_continual
from transferkit.continual.ewc import EWC
from transferkit.continual.replay import ReservoirBuffer
from transferkit.continual.runner import Task
from transferkit.errors import ConfigError
from transferkit.losses import distillation_loss


def test_ewc_penalty_is_zero_at_the_anchor_and_weighted_by_fisher():
    ewc = EWC(lam=2.0)
    x, y = torch.randn(8, 2), torch.zeros(8, dtype=torch.long)
    two_class = nn.Linear(2, 2, bias=False)
    ewc.after_task(two_class, x, y, 0)
    assert float(ewc.penalty(two_class).detach()) == 0.0
    with torch.no_grad():
        two_class.weight += 1.0
    expected = 0.5 * 2.0 * ewc.fisher["weight"].sum()
    assert float(ewc.penalty(two_class).detach()) == pytest.approx(float(expected))
    assert (ewc.fisher["weight"] > 0).all()


def test_lwf_distillation_is_zero_when_the_student_matches_the_teacher():
    logits = torch.randn(4, 3)
    assert float(distillation_loss(logits, logits, 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(logits, logits.flip(1), 2.0)) > 0


def test_reservoir_keeps_capacity_and_samples_uniformly():
    kept = np.zeros(100)
    for seed in range(300):
        buffer = ReservoirBuffer(10, seed=seed)
        buffer.add(torch.arange(100.0).view(100, 1), torch.arange(100))
        assert len(buffer) == 10
        kept[buffer.items[1].numpy()] += 1
    rate = kept / 300  # each of 100 items should be kept with probability 10/100
    assert abs(rate[:50].mean() - rate[50:].mean()) < 0.03 and abs(rate.mean() - 0.1) < 1e-9


def _tasks():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(6, 16, generator=g) * 2

    def sample(n):
        y = torch.arange(6).repeat_interleave(n)
        return centres[y] + torch.randn(len(y), 16, generator=g), y

    (xtr, ytr), (xte, yte) = sample(40), sample(20)
    return class_incremental_tasks(xtr, ytr, xte, yte, 3)


def test_naive_fine_tuning_forgets_and_replay_remembers():
    tasks = _tasks()
    naive = run_continual(tasks, "fine-tune", 6, epochs=5, log=lambda _: None)
    replay = run_continual(tasks, "replay", 6, epochs=5, method_options={"capacity": 60}, log=lambda _: None)
    assert naive.accuracy_matrix.shape == (3, 3)
    assert naive.forgetting > 0.5  # class-incremental: old classes are overwritten
    assert replay.forgetting < naive.forgetting - 0.3
    assert replay.average_accuracy > naive.average_accuracy + 0.2


@pytest.mark.parametrize("method", ["ewc", "lwf"])
def test_regularisers_forget_less_than_naive_fine_tuning_in_domain_incremental_learning(method):
    """Same classes, shifted input distribution per task: the setting EWC and LwF were made for."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(16, 4, generator=g)
    tasks = []
    for t in range(3):
        shift = torch.randn(16, generator=g) * 1.5
        x = torch.randn(300, 16, generator=g)
        y = (x @ w).argmax(1)
        x = x + shift
        tasks.append(Task(f"domain {t}", x[:200], y[:200], x[200:], y[200:]))
    kwargs = {"epochs": 10, "class_incremental": False, "log": lambda _: None}
    naive = run_continual(tasks, "fine-tune", 4, **kwargs)
    regularised = run_continual(tasks, method, 4, **kwargs)
    assert regularised.forgetting < 0.75 * naive.forgetting, (regularised.forgetting, naive.forgetting)


def test_methods_are_registered():
    assert {"fine-tune", "ewc", "lwf", "replay"} <= set(continual_methods.names())


def _sorted_two_class_task():
    """Class 0 rows first, then class 1; class c only activates input c, so its gradients
    reach only column c of a linear layer: a column's Fisher is non-zero iff that class was used."""
    x = torch.zeros(20, 3)
    x[:10, 0], x[10:, 1] = 1.0, 1.0
    return x, torch.tensor([0] * 10 + [1] * 10)


def test_ewc_fisher_sees_every_class_of_a_class_sorted_task():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 3, bias=False)
    x, y = _sorted_two_class_task()
    ewc = EWC(samples=6)
    ewc.after_task(model, x, y, task=0)
    fisher = ewc.fisher["weight"]
    assert fisher[:, 0].sum() > 0 and fisher[:, 1].sum() > 0  # the first 6 rows alone are all class 0


def test_ewc_fisher_uses_the_masked_logits_of_class_incremental_training():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 3, bias=False)
    x, y = _sorted_two_class_task()
    ewc = EWC(samples=20)
    ewc.logit_mask = torch.tensor([0.0, 0.0, float("-inf")])  # class 2 not seen yet
    ewc.after_task(model, x, y, task=0)
    assert torch.equal(ewc.fisher["weight"][2], torch.zeros(3))  # no probability mass, no gradient
    assert ewc.fisher["weight"][:2].sum() > 0


@pytest.mark.parametrize(
    "tasks, classes, fix",
    [(3, 5, "use --tasks 2."), (4, 7, "use --tasks 2 to 3."), (2, 3, "it needs at least 4 classes."), (1, 6, "")],
)
def test_every_task_needs_two_classes(tasks, classes, fix):
    """A one-class task: cross-entropy over one class has no gradient, and task-aware accuracy is trivially 1."""
    y = torch.arange(classes).repeat_interleave(2)
    with pytest.raises(ConfigError, match=f"--tasks {tasks} on {classes} classes") as raised:
        class_incremental_tasks(torch.zeros(len(y), 4), y, torch.zeros(len(y), 4), y, tasks)
    assert str(raised.value).endswith(fix)
