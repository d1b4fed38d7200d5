"""FixMatch: its unlabelled loss against hand-computed numbers, its steps, its schedule, exact resume, and the
contract that with λ = 0 the unlabelled images change nothing."""

import functools
import math

import pytest
import torch

from transferkit.api import train_classifier
from transferkit.data import TensorImageDataset
from transferkit.engine.checkpoint import load_checkpoint
from transferkit.engine.config import TrainConfig
from transferkit.errors import ConfigError
from transferkit.semi import FIXMATCH
from transferkit.semi.fixmatch import FixMatchConfig, consistency_loss

from ..engine.helpers import EPOCH_LINE, config, dying_log, quiet, tiny_data

OPTIONS = {"epochs": 3, "min_steps": 5, "batch_size": 8, "mu": 2, "threshold": 0.6}


def test_the_unlabelled_loss_is_the_strong_views_cross_entropy_on_confident_weak_labels_averaged_over_all():
    weak = torch.tensor([[3.0, 0.0], [0.2, 0.0]], requires_grad=True)  # softmax max 0.9526 (class 0), 0.5498
    strong = torch.tensor([[1.0, 2.0], [5.0, 0.0]], requires_grad=True)
    loss, confident = consistency_loss(weak, strong, threshold=0.9)
    # only image 0 passes: −log softmax([1, 2])[0] = log(1 + e); image 1 adds zero; mean over both images
    assert float(loss.detach()) == pytest.approx(math.log(1 + math.e) / 2, abs=1e-6)
    assert float(confident) == 1
    loss.backward()
    assert weak.grad is None or torch.count_nonzero(weak.grad) == 0  # the pseudo-label is a constant
    assert torch.count_nonzero(strong.grad[1]) == 0 and torch.count_nonzero(strong.grad[0]) == 2
    loss, confident = consistency_loss(weak.detach(), strong.detach(), threshold=0.5)  # both pass now
    both = (math.log(1 + math.e) + math.log(1 + math.exp(-5))) / 2
    assert float(loss) == pytest.approx(both, abs=1e-6) and float(confident) == 2


def test_the_schedule_keeps_the_users_seed_and_devices_and_never_smooths_labels():
    base = TrainConfig(seed=7, accelerator="cpu", precision="32-true", epochs=30, label_smoothing=0.1)
    got = FixMatchConfig(epochs=5, lr=1e-4, batch_size=16).train_config(base)
    assert (got.seed, got.accelerator, got.precision) == (7, "cpu", "32-true")
    assert (got.epochs, got.lr, got.batch_size, got.label_smoothing, got.monitor) == (5, 1e-4, 16, 0.0, "val_acc")
    with pytest.raises(ConfigError, match="threshold must be in"):
        FixMatchConfig(threshold=1.5)


def _data(pool_seed=1, preset="none"):
    torch.manual_seed(0)
    backbone, data = tiny_data(n_per_class=8, preset=preset)  # 24 labelled images
    data.unlabeled = TensorImageDataset(torch.rand(30, 3, 16, 16, generator=torch.Generator().manual_seed(pool_seed)),
                                        [-1] * 30)  # fmt: skip
    return backbone, data


def _fit(out=None, log=quiet, resume=False, pool_seed=1, preset="none", **options):
    backbone, data = _data(pool_seed, preset)
    opts = {**OPTIONS, **options}
    return train_classifier(data, backbone, FIXMATCH, config(), strategy_options=opts, out=out, resume=resume,
                            log=log, report=False)  # fmt: skip


def test_each_step_draws_a_labelled_batch_and_mu_times_as_many_unlabelled_pairs(monkeypatch):
    from transferkit.semi import fixmatch

    shapes = []
    real = fixmatch.consistency_loss

    def spy(weak, strong, threshold):
        shapes.append((weak.shape[0], strong.shape[0]))
        return real(weak, strong, threshold)

    monkeypatch.setattr(fixmatch, "consistency_loss", spy)
    result = _fit()
    # an epoch: max(⌈24/8⌉ labelled, ⌈30/16⌉ unlabelled, min_steps 5) = 5 steps; epoch 1 is the solved probe
    assert len(shapes) == 2 * 5
    # the unlabelled loader cycles: 16, 14 (the rest of the pool), 16, 14, 16 images per step
    assert [w for w, _ in shapes[:5]] == [16, 14, 16, 14, 16] and all(w == s for w, s in shapes)
    assert all(0 <= row["pseudo_labelled_share"] <= 1 for row in result.history[1:])
    assert "pseudo_labelled_share" not in result.history[0]


def test_with_weight_zero_the_unlabelled_images_change_nothing(tmp_path):
    """λ = 0 and BatchNorm statistics frozen: the labelled loss alone trains, whatever the pool holds."""

    def trained(name, **options):  # the last epoch's weights (the best one may be the probe's)
        _fit(tmp_path / name, **options)
        return load_checkpoint(tmp_path / name / "last.pt")["state_dict"]

    a, b = trained("a", weight=0.0, pool_seed=1), trained("b", weight=0.0, pool_seed=2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = trained("c", weight=1.0, threshold=0.01, pool_seed=1)  # every pseudo-label counts
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_a_killed_fixmatch_run_resumes_exactly(tmp_path, augment_on):
    run = functools.partial(_fit, preset="light", augment_on=augment_on)
    full = run(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):  # killed when its 3rd epoch ends, before that epoch is saved
        run(tmp_path / "killed", log=dying_log(3))
    assert len(load_checkpoint(tmp_path / "killed" / "last.pt")["history"]) == 2
    lines: list[str] = []
    resumed = run(tmp_path / "killed", resume=True, log=lines.append)
    assert [line.split()[1] for line in lines if EPOCH_LINE.match(line)] == ["3/3"]
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_loader_workers_give_the_same_run_as_none():
    """Each image's views are seeded by (seed, pass, index), so workers change nothing."""
    backbone, data = _data()
    opts = {**OPTIONS, "epochs": 2}
    runs = [
        train_classifier(
            data, backbone, FIXMATCH, config(num_workers=w), strategy_options=opts, log=quiet, report=False
        ).history  # fmt: skip
        for w in (1, 2)
    ]
    assert [r["train_loss"] for r in runs[0]] == [r["train_loss"] for r in runs[1]]


def test_options_that_fixmatch_cannot_take_are_clear_errors():
    backbone, data = _data()
    with pytest.raises(ConfigError, match=r"Unknown option\(s\) \['tau'\] for strategy 'fixmatch'.*threshold"):
        train_classifier(data, backbone, FIXMATCH, config(), strategy_options={"tau": 0.9}, log=quiet)
    with pytest.raises(ConfigError, match="Leave out --layers"):
        train_classifier(data, backbone, FIXMATCH, config(), layers="auto", log=quiet)
    with pytest.raises(ConfigError, match="Mixup/CutMix"):
        train_classifier(data, backbone, FIXMATCH, config(mixup=0.2), strategy_options=OPTIONS, log=quiet)
    data.unlabeled = None
    with pytest.raises(ConfigError, match="give them with --unlabeled"):
        train_classifier(data, backbone, FIXMATCH, config(), log=quiet)


def test_views_are_made_on_the_gpu_only_for_the_preset_they_reproduce():
    from transferkit.semi.fixmatch import views_on_device

    cpu = TrainConfig(accelerator="cpu")
    assert views_on_device(FixMatchConfig(), cpu, "light") == (False, "made by the loader's workers (no GPU)")
    assert views_on_device(FixMatchConfig(augment_on="device"), cpu, "light")[0]
    with pytest.raises(ConfigError, match="reproduce the 'light' preset.*got preset 'microscopy'"):
        views_on_device(FixMatchConfig(augment_on="device"), cpu, "microscopy")


def test_device_views_give_each_step_the_labelled_weak_and_the_pools_weak_and_strong_views(monkeypatch):
    from transferkit.semi import fixmatch

    seen = []
    real = fixmatch.DeviceViews.forward

    def spy(self, images, pool):
        seen.append((images.dtype, tuple(images.shape), pool.dtype, tuple(pool.shape)))
        return real(self, images, pool)

    monkeypatch.setattr(fixmatch.DeviceViews, "forward", spy)
    result = _fit(preset="light", augment_on="device")
    assert len(seen) == 2 * 5 and result.history[-1]["pseudo_labelled_share"] is not None
    # the loader gives uint8 images at the input size (the tiny backbone's 16 px); the views are made here
    assert seen[0] == (torch.uint8, (8, 3, 16, 16), torch.uint8, (16, 3, 16, 16))


def test_device_views_train_the_same_whether_the_resized_pool_is_kept_in_memory_or_not(tmp_path, monkeypatch):
    """Resizing once is only a cache: the same batches, the same weights (no workers: the same sampler)."""
    from transferkit.semi import fixmatch

    lines: list[str] = []
    kept = _fit(tmp_path / "kept", preset="light", augment_on="device", log=lines.append)
    assert any("the pool resized once and kept in memory" in line for line in lines)
    real = fixmatch.resize_once
    monkeypatch.setattr(fixmatch, "resize_once", lambda *args: real(*args[:4], max_gb=0.0))  # nothing fits
    lines.clear()
    resized = _fit(tmp_path / "resized", preset="light", augment_on="device", log=lines.append)
    assert any("the pool resized by the loader" in line for line in lines)
    a, b = (load_checkpoint(tmp_path / name / "last.pt")["state_dict"] for name in ("kept", "resized"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in kept.history] == [r["train_loss"] for r in resized.history]
