"""The self-training student: its images are the labelled ones plus the teacher's class-balanced pseudo-labels
(checked by hand), it starts from the pretrained weights and fine-tunes only its deepest groups."""

import pytest
import torch
import yaml

from transferkit.api import train_classifier
from transferkit.data import TensorImageDataset
from transferkit.engine.checkpoint import load_checkpoint
from transferkit.engine.config import TrainConfig
from transferkit.errors import ConfigError
from transferkit.semi import STUDENT
from transferkit.semi.student import PseudoLabelled, StudentConfig, student_images

from ..engine.helpers import EPOCH_LINE, config, dying_log, quiet, tiny_data


def _images(values):
    """One 2×2 image per value, every pixel that value."""
    pixels = torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 2, 2)
    return TensorImageDataset(pixels, [0] * len(values))


def test_the_students_images_are_the_labelled_ones_then_the_chosen_pool_images_with_their_pseudo_labels():
    labelled = TensorImageDataset(torch.zeros(2, 3, 2, 2), [1, 0])
    pool = _images([0.1, 0.2, 0.3, 0.4])
    both = PseudoLabelled(labelled, pool, [3, 1], [2, 0])
    assert len(both) == 4 and both.labels == [1, 0, 2, 0]
    assert [both.label(i) for i in range(4)] == [1, 0, 2, 0]
    assert float(both.raw(2).max()) == pytest.approx(0.4) and float(both.raw(3).max()) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="2 pool indices but 1 pseudo-labels"):
        PseudoLabelled(labelled, pool, [0, 1], [0])


def test_the_teacher_labels_the_most_confident_share_of_the_pool_per_class():
    labelled = TensorImageDataset(torch.zeros(1, 3, 2, 2), [0])
    pool = _images([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    # teacher's probabilities: images 0, 2, 4 → class 0 (0.9, 0.6, 0.7); 1, 3, 5 → class 1 (0.55, 0.8, 0.95)
    probs = torch.tensor([[0.9, 0.1], [0.45, 0.55], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3], [0.05, 0.95]])
    chosen = student_images(labelled, pool, probs, share=4 / 6)  # 4 of 6 images: 2 per class
    assert chosen.indices == [0, 4, 5, 3] and chosen.pseudo == [0, 0, 1, 1]
    assert len(chosen) == 1 + 4


def test_the_student_schedule_keeps_the_users_seed_and_devices():
    base = TrainConfig(seed=7, accelerator="cpu", precision="32-true", epochs=30, cache_views=4)
    got = StudentConfig(epochs=2, lr=5e-4, batch_size=16, label_smoothing=0.2).train_config(base)
    assert (got.seed, got.accelerator, got.precision) == (7, "cpu", "32-true")
    assert (got.epochs, got.lr, got.batch_size, got.label_smoothing, got.cache_views) == (2, 5e-4, 16, 0.2, 1)


def _student_data():
    """A tiny backbone, 8 labelled images per class and a pool of 30 unlabelled ones."""
    backbone, data = tiny_data(n_per_class=8)
    data.unlabeled = TensorImageDataset(torch.rand(30, 3, 16, 16), [-1] * 30)
    return backbone, data


def test_the_student_fine_tunes_a_pretrained_copy_on_labelled_and_pseudo_labelled_images(tmp_path):
    backbone, data = _student_data()
    pretrained = {k: v.clone() for k, v in backbone.state_dict().items()}
    result = train_classifier(data, backbone, STUDENT, config(), out=tmp_path, log=quiet, report=False)
    pseudo = result.extra["pseudo_labelled"]
    assert 0 < pseudo <= 24  # 0.8 × 30 images / 3 classes = at most 8 per class (fewer when a class has fewer)
    trained_on = yaml.safe_load((tmp_path / "config.yaml").read_text())["data"]["train"]
    assert trained_on == len(data.train) + pseudo
    student = result.model.backbone.state_dict()
    # the tiny backbone has 4 layer groups, model.0 … model.3: the deepest 3 train, model.0 stays pretrained
    assert all(torch.equal(v, student[k]) for k, v in pretrained.items() if k.startswith("model.0."))
    assert any(not torch.equal(v, student[k]) for k, v in pretrained.items() if k.startswith("model.3."))
    untouched = all(torch.equal(v, pretrained[k]) for k, v in backbone.state_dict().items())
    assert untouched  # the caller's backbone (the teacher's, frozen) is not the one fine-tuned
    assert (tmp_path / "best.pt").is_file()


def test_the_gpu_schedule_trains_every_layer_on_the_whole_pool_with_randaugment_views(monkeypatch):
    import dataclasses

    import torchvision.transforms.v2 as T

    import transferkit.api as api
    from transferkit.api import fit_student

    backbone, data = _student_data()
    made, real = [], api.make_data
    monkeypatch.setattr(api, "make_data", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    pretrained = {k: v.clone() for k, v in backbone.state_dict().items()}
    probs = torch.eye(3)[torch.arange(30) % 3] * 0.9 + 0.1 / 3  # the teacher: 10 images of each class
    settings = dataclasses.replace(StudentConfig.for_device(gpu=True), epochs=3, batch_size=8)
    result = fit_student(data, backbone, probs, config(), settings=settings, log=quiet)
    assert result.extra["pseudo_labelled"] == 30  # share 1: every pool image
    taught = made[-1]
    assert len(taught.train) == 24 + 30
    policies = [t for t in _steps(taught.train.transform) if isinstance(t, T.RandAugment)]
    assert len(policies) == 1  # the student's noise
    student = result.model.backbone.state_dict()
    changed = {k.split(".")[1] for k, v in pretrained.items() if v.is_floating_point() and "running" not in k
               and not torch.equal(v, student[k])}  # fmt: skip
    assert changed == {"0", "1", "2", "3"}  # every layer group trained (LP-FT), not only the deepest
    stats = [k for k in pretrained if "running_mean" in k]
    assert stats and all(torch.equal(pretrained[k], student[k]) for k in stats)  # BatchNorm statistics frozen


def _steps(transform):
    """Every step of a composed transform, nested ones included."""
    for step in getattr(transform, "transforms", [transform]):
        yield step
        for attr in ("policy", "inner"):
            if hasattr(step, attr):
                yield from _steps(getattr(step, attr))


def test_the_student_trains_with_partial_or_lp_ft_and_on_a_share_of_the_pool():
    with pytest.raises(ConfigError, match="partial or lp-ft, got 'fine-tune'"):
        StudentConfig(strategy="fine-tune")
    with pytest.raises(ConfigError, match=r"share of the pool must be in \(0, 1\], got 0"):
        StudentConfig(share=0)


def _student(out, resume=False, log=quiet):
    torch.manual_seed(0)  # the same tiny backbone and pool in every run
    backbone, data = _student_data()
    return train_classifier(data, backbone, STUDENT, config(), out=out, resume=resume, log=log, report=False)


def test_a_killed_student_resumes_exactly(tmp_path):
    full = _student(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):  # killed when its 2nd of 3 epochs ends, before that epoch is saved
        _student(tmp_path / "killed", log=dying_log(2))
    assert len(load_checkpoint(tmp_path / "killed" / "last.pt")["history"]) == 1
    lines: list[str] = []
    resumed = _student(tmp_path / "killed", resume=True, log=lines.append)
    trained = [line.split()[1] for line in lines if EPOCH_LINE.match(line)]
    assert trained == ["2/3", "3/3"]  # the teacher trains again; the student continues, not restarts
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_student_whose_teacher_now_labels_otherwise_is_not_resumed(tmp_path, monkeypatch):
    with pytest.raises(KeyboardInterrupt):
        _student(tmp_path, log=dying_log(2))
    last = (tmp_path / "last.pt").read_bytes()
    import transferkit.semi.student as student

    chosen = student.balanced_pseudo_labels

    def another_install(probs, per_class):  # the teacher re-trained elsewhere: one pseudo-label differs
        kept, labels = chosen(probs, per_class)
        labels[0] = (labels[0] + 1) % probs.shape[1]
        return kept, labels

    monkeypatch.setattr(student, "balanced_pseudo_labels", another_install)
    with pytest.raises(ConfigError, match=r"pseudo_labels\.sha256"):
        _student(tmp_path, resume=True)
    assert (tmp_path / "last.pt").read_bytes() == last
