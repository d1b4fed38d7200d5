"""Knowledge distillation: the student learns the teacher's function, not the labels."""

import pytest
import torch

from transferkit.engine.distill import distill, kd_loss
from transferkit.engine.model import build_model
from transferkit.errors import ConfigError

from ..conftest import make_tiny_backbone
from .helpers import tiny_data


def test_kd_loss_is_zero_for_identical_logits_with_alpha_zero():
    logits = torch.randn(5, 3)
    assert float(kd_loss(logits, logits, torch.zeros(5, dtype=torch.long), alpha=0.0)) == pytest.approx(0, abs=1e-6)


def test_pure_distillation_copies_the_teacher_even_against_the_labels():
    torch.manual_seed(0)
    _, data = tiny_data(n_per_class=10)
    teacher = build_model(make_tiny_backbone(), 3, ["c0", "c1", "c2"])
    # a teacher that calls every class by the next one's name
    x = torch.stack([data.train_eval[i][0] for i in range(len(data.train_eval))])
    wrong = (torch.as_tensor([data.train_eval[i][1] for i in range(len(data.train_eval))]) + 1) % 3
    optimizer = torch.optim.Adam(teacher.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(teacher(x), wrong).backward()
        optimizer.step()
    teacher.eval()
    student = build_model(make_tiny_backbone(), 3, ["c0", "c1", "c2"])
    result = distill(
        teacher, student, data.train_eval, data.val, epochs=15, lr=1e-2, alpha=0.0, select="last", log=lambda _: None
    )
    assert result.teacher_agreement > 0.9
    assert result.val_accuracy < 0.2  # it learned the teacher's (wrong) function, not the labels


def test_distilling_between_different_class_lists_is_an_error():
    a = build_model(make_tiny_backbone(), 2, ["x", "y"])
    b = build_model(make_tiny_backbone(), 2, ["x", "z"])
    with pytest.raises(ConfigError, match="classes"):
        distill(a, b, [], [], epochs=1)


def test_a_killed_distillation_resumes_exactly_from_its_checkpoint(tmp_path):
    from transferkit.engine.callbacks import Checkpointer

    from .test_trainer import _KillAt

    _, data = tiny_data(n_per_class=6)

    def run(out, *extra):
        torch.manual_seed(0)
        teacher = build_model(make_tiny_backbone(), 3, ["c0", "c1", "c2"])
        student = build_model(make_tiny_backbone(), 3, ["c0", "c1", "c2"])
        callbacks = [Checkpointer(out, resume=bool(extra) and extra[0] == "resume")]
        callbacks += [_KillAt(2)] if extra == ("kill",) else []
        return distill(
            teacher, student, data.train, data.val, epochs=4, lr=1e-2, log=lambda _: None, callbacks=callbacks
        )

    full = run(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", "kill")
    resumed = run(tmp_path / "cut", "resume")
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    for a, b in zip(full.student.state_dict().values(), resumed.student.state_dict().values()):
        assert torch.equal(a, b)
