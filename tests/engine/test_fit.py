import numpy as np
import pytest
import torch

from transferkit.api import train_classifier
from transferkit.data import TensorImageDataset
from transferkit.engine.checkpoint import atomic_save, load_checkpoint
from transferkit.engine.config import SCHEDULERS
from transferkit.errors import ConfigError, TrainingError

from ..conftest import make_tiny_backbone
from .helpers import config, dying_log, quiet, tiny_data


def _fit(tmp_path, strategy="lp-ft", epochs=4, resume=False, log=quiet, **kw):
    torch.manual_seed(0)  # same initial weights in every run
    backbone, data = tiny_data(preset="light")
    cfg = config(epochs=epochs, **kw)
    return train_classifier(
        data, backbone, strategy, cfg, strategy_options={"probe_epochs": 1}, out=tmp_path, resume=resume, log=log
    )


@pytest.mark.parametrize("scheduler", ["cosine", "plateau"])
def test_resume_continues_exactly(tmp_path, scheduler):
    full = _fit(tmp_path / "full", scheduler=scheduler)
    killed = _kill_after(tmp_path / "killed", epochs_done=2, scheduler=scheduler)
    resumed = _fit(killed, resume=True, scheduler=scheduler)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in full.history]
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def _kill_after(path, epochs_done, scheduler):
    """Interrupt the run after epoch ``epochs_done + 1`` trained but before it was saved."""
    with pytest.raises(KeyboardInterrupt):
        _fit(path, scheduler=scheduler, log=dying_log(epochs_done + 1))
    assert len(load_checkpoint(path / "last.pt")["history"]) == epochs_done
    return path


def test_a_resume_with_other_options_is_refused_and_overwrites_nothing(tmp_path):
    killed = _kill_after(tmp_path / "killed", epochs_done=2, scheduler="cosine")
    saved = {name: (killed / name).read_bytes() for name in ("last.pt", "config.yaml", "metrics.csv")}
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.01 → 0\.03.*another --out"):
        _fit(killed, resume=True, scheduler="cosine", lr=3e-2)  # the run was trained with lr 1e-2
    assert {name: (killed / name).read_bytes() for name in saved} == saved
    resumed = _fit(killed, resume=True, scheduler="cosine", top_k=2)  # metrics-only options may differ
    assert len(resumed.history) == 4


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="Nothing to resume"):
        _fit(tmp_path, resume=True)


def test_frozen_backbone_runs_once_per_image_with_the_cache():
    torch.manual_seed(0)
    backbone, data = tiny_data()
    calls = {"images": 0}
    backbone.model.register_forward_hook(
        lambda _m, inputs, _o: calls.__setitem__("images", calls["images"] + len(inputs[0]))
    )
    sgd = {"epochs": 5, "head_solver": "sgd"}  # epochs of SGD on both paths, to compare them step by step
    cached = train_classifier(data, backbone, "feature-extraction", config(**sgd), log=quiet)
    once = len(data.train) + len(data.val)
    assert calls["images"] == once  # 5 epochs and the final evaluation, all from one pass
    torch.manual_seed(0)
    backbone2, data2 = tiny_data()
    naive = train_classifier(data2, backbone2, "feature-extraction", config(**sgd, cache="off"), log=quiet)
    assert [r["val_loss"] for r in cached.history] == pytest.approx([r["val_loss"] for r in naive.history], abs=1e-5)


@pytest.mark.parametrize("strategy, options", [("partial", {"groups": 2}), ("progressive", {})])
def test_frozen_bottom_is_cached_and_training_is_unchanged(strategy, options):
    """Only the top runs each epoch while the bottom is frozen, and the numbers are those of the full run."""
    runs, first_layer_images = [], []
    for cache in ("auto", "off"):
        torch.manual_seed(0)
        backbone, data = tiny_data()
        split = backbone.split(2)  # verify the cut before counting
        assert split is not None
        calls = {"images": 0}
        backbone.model[0].register_forward_hook(
            lambda _m, inputs, _o, c=calls: c.__setitem__("images", c["images"] + len(inputs[0]))
        )
        cfg = config(epochs=4, cache=cache, head_solver="sgd")
        runs.append(train_classifier(data, backbone, strategy, cfg, strategy_options=options, log=quiet))
        first_layer_images.append(calls["images"])
    cached, naive = runs
    assert [r["val_loss"] for r in cached.history] == pytest.approx([r["val_loss"] for r in naive.history], abs=1e-5)
    assert any(r["cached"] for r in cached.history) and not any(r["cached"] for r in naive.history)
    per_epoch = len(tiny_data()[1].train) + len(tiny_data()[1].val)
    assert first_layer_images[1] >= 4 * per_epoch  # naive: the first layer runs every epoch
    assert first_layer_images[0] < first_layer_images[1]


def test_frozen_bottom_is_not_cached_when_frozen_batchnorm_trains():
    torch.manual_seed(0)
    backbone, data = tiny_data()
    result = train_classifier(data, backbone, "partial", config(epochs=2, train_bn=True), log=quiet)
    assert not any(r["cached"] for r in result.history)


def test_run_folder_contents(tmp_path):
    result = _fit(tmp_path, epochs=2)
    names = {p.name for p in tmp_path.iterdir()}
    assert {
        "config.yaml",
        "metrics.csv",
        "curves.png",
        "confusion.png",
        "best.pt",
        "last.pt",
        "best_metrics.json",
    } <= names
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,stage,train_loss,train_acc,val_loss,val_acc,val_f1") and len(lines) == 3
    assert result.metrics.accuracy == pytest.approx(result.history[result.best_epoch]["val_acc"], abs=1e-6)


def test_non_finite_loss_stops_with_a_clear_message():
    backbone, data = tiny_data()
    images = torch.full((6, 3, 16, 16), float("nan"))
    from transferkit.api import make_data

    bad = make_data(TensorImageDataset(images, [0, 1, 2] * 2), data.val.base, data.classes, backbone.data_config)
    with pytest.raises(TrainingError, match="loss became nan.*Lower --lr"):
        train_classifier(bad, backbone, "fine-tune", config(), log=quiet)


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    backbone, data = tiny_data()
    result = train_classifier(
        data, backbone, "fine-tune", config(epochs=30, lr=0.5, optimizer="sgd", patience=2, scheduler="none"), log=quiet
    )
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 3


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_trains(scheduler):
    backbone, data = tiny_data()
    result = train_classifier(data, backbone, "fine-tune", config(scheduler=scheduler, warmup_epochs=1), log=quiet)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_cosine_with_warmup_shape():
    from transferkit.engine.optim import CosineWithWarmup

    f = CosineWithWarmup(warmup=4, total=14)
    values = [f(s) for s in range(15)]
    assert values[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8]) and values[4] == pytest.approx(1.0)
    assert values[9] == pytest.approx(0.5) and values[14] == pytest.approx(0.0)


@pytest.fixture
def loss_calls(monkeypatch):
    """Every (logits, targets, criterion, loss) the training loss sees."""
    calls = []
    original = torch.nn.CrossEntropyLoss.forward

    def spy(self, logits, targets):
        loss = original(self, logits, targets)
        calls.append((logits.detach(), targets.detach(), self, loss.detach()))
        return loss

    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", spy)
    return calls


@pytest.mark.parametrize("options", [{"mixup": 0.4}, {"cutmix": 1.0}, {"mixup": 0.2, "cutmix": 1.0}])
def test_mixup_and_cutmix_targets_reach_the_loss(options, loss_calls):
    backbone, data = tiny_data(preset="light")
    result = train_classifier(data, backbone, "fine-tune", config(epochs=2, **options), log=quiet)
    soft = [t for _, t, _, _ in loss_calls if t.ndim == 2]
    assert soft and len(soft) == len(loss_calls)  # every training batch trains on mixed (soft) targets
    assert torch.allclose(soft[0].sum(1), torch.ones(len(soft[0])))
    assert any(((t > 0) & (t < 1)).any() for t in soft)  # at least one pair of images was really mixed
    assert result.metrics.accuracy > 0.5


def test_balanced_sampling_draws_every_class_about_equally(loss_calls):
    torch.manual_seed(0)
    backbone, data = tiny_data(n_per_class=12)
    keep = [i for i, y in enumerate(data.train.base.labels) if y == 0 or i % 4 == 0]  # class 0 ×12, others ×3
    from transferkit.api import make_data

    base = data.train.base
    train = TensorImageDataset(base.images[keep], [base.labels[i] for i in keep])
    data = make_data(train, data.val.base, data.classes, backbone.data_config)
    assert np.bincount(train.labels).tolist() == [12, 3, 3]
    train_classifier(data, backbone, "fine-tune", config(epochs=6, balance="sampler"), log=quiet)
    drawn = np.bincount(torch.cat([t for _, t, _, _ in loss_calls]).numpy(), minlength=3)
    assert drawn.min() / drawn.max() > 0.6  # 12:3:3 in the data, about 1:1:1 in training


def test_class_weighted_loss_uses_inverse_frequency_weights(loss_calls):
    backbone, data = tiny_data(n_per_class=12)
    keep = [i for i, y in enumerate(data.train.base.labels) if y != 2 or i % 3 == 0]  # 12, 12, 4 images
    from transferkit.api import make_data

    base = data.train.base
    train = TensorImageDataset(base.images[keep], [base.labels[i] for i in keep])
    data = make_data(train, data.val.base, data.classes, backbone.data_config)
    train_classifier(data, backbone, "fine-tune", config(epochs=1, balance="loss"), log=quiet)
    weight = loss_calls[0][2].weight
    assert weight.tolist() == pytest.approx([28 / (3 * 12), 28 / (3 * 12), 28 / (3 * 4)])  # N / (K · n_k)


def test_label_smoothing_changes_the_loss_by_its_formula(loss_calls):
    backbone, data = tiny_data()
    train_classifier(data, backbone, "fine-tune", config(epochs=1, label_smoothing=0.2), log=quiet)
    logits, targets, criterion, loss = loss_calls[0]
    log_p = logits.float().log_softmax(1)
    nll = -log_p.gather(1, targets[:, None]).squeeze(1)
    expected = (0.8 * nll - 0.2 * log_p.mean(1)).mean()  # (1 - ε)·CE + ε·mean over classes of −log p
    assert criterion.label_smoothing == 0.2
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert abs(float(nll.mean()) - float(loss)) > 1e-3  # and it is not the plain cross-entropy


@pytest.mark.parametrize("precision, dtype", [("bf16-mixed", torch.bfloat16), ("32-true", torch.float32)])
def test_the_precision_option_sets_the_forward_dtype(precision, dtype):
    backbone, data = tiny_data()
    seen = set()
    backbone.model[0][0].register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))  # the first convolution
    train_classifier(data, backbone, "fine-tune", config(epochs=1, precision=precision), log=quiet)
    assert seen == {dtype}


def test_gradient_clipping_and_accumulation_run_and_learn():
    backbone, data = tiny_data(preset="light")
    result = train_classifier(data, backbone, "fine-tune", config(epochs=4, grad_accum=2, max_grad_norm=1.0), log=quiet)
    assert result.metrics.accuracy > 0.5


def test_gradient_accumulation_matches_a_larger_batch():
    results = []
    for batch, accum in ((8, 1), (4, 2)):
        torch.manual_seed(0)
        backbone = make_tiny_backbone(batchnorm=False)
        _, data = tiny_data()
        r = train_classifier(
            data,
            backbone,
            "fine-tune",
            config(batch_size=batch, grad_accum=accum, epochs=1, scheduler="none", optimizer="sgd"),
            log=quiet,
        )
        results.append(r.model.state_dict())
    for k in results[0]:
        assert torch.allclose(results[0][k], results[1][k], atol=1e-6), k


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    from transferkit.errors import TransferkitError

    with pytest.raises(TransferkitError, match="disk is full"):
        atomic_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_read_only_output_folder_is_a_clear_error(tmp_path):
    import os

    if os.geteuid() == 0:
        target = "/proc/transferkit-run"  # not writable even for root
    else:
        target = str(tmp_path / "ro" / "run")
        (tmp_path / "ro").mkdir(mode=0o500)
    from transferkit.errors import TransferkitError

    with pytest.raises(TransferkitError, match="not writable"):
        _fit(target, epochs=1)


def test_mlp_head_trains_when_the_last_batch_would_hold_one_image():
    torch.manual_seed(0)
    backbone, data = tiny_data(n_per_class=6)  # 18 images: batches of 8, 8 and a lone 2 → use 17
    train = TensorImageDataset(data.train.base.images[:17], data.train.base.labels[:17])
    from transferkit.api import make_data

    data = make_data(train, data.val.base, data.classes, backbone.data_config)
    cfg = config(epochs=2, batch_size=8, head_solver="sgd")  # 17 = 2·8 + 1: BatchNorm1d would see one image
    result = train_classifier(data, backbone, "fine-tune", cfg, head="mlp", head_options={"hidden": 16}, log=quiet)
    assert len(result.history) == 2 and all(r["train_loss"] == r["train_loss"] for r in result.history)


def test_misspelled_strategy_options_name_the_valid_ones():
    backbone, data = tiny_data()
    with pytest.raises(
        ConfigError, match=r"Unknown option\(s\) \['group'\] for strategy 'partial'. Valid options: groups"
    ):
        train_classifier(data, backbone, "partial", config(), strategy_options={"group": 2}, log=quiet)


def test_build_model_checks_the_number_of_class_names():
    from transferkit.engine.model import build_model

    with pytest.raises(ConfigError, match="num_classes=3 but 2 class names"):
        build_model(make_tiny_backbone(), 3, ["a", "b"])


def _dropout_backbone():
    """The tiny net with dropout inside the first stage and a parameter-free dropout after the pooling."""
    from torch import nn

    from transferkit.backbones import DataConfig, ModelBackbone
    from transferkit.backbones._grouping import find_layer_groups

    from ..conftest import tiny_convnet

    net = tiny_convnet()
    net[0].append(nn.Dropout(0.5))
    net.append(nn.Dropout(0.5))
    return ModelBackbone("tiny-dropout", net, 32, DataConfig(16, (0.5,) * 3, (0.25,) * 3), find_layer_groups(net))


@pytest.mark.parametrize("strategy, options", [("partial", {"groups": 2}), ("feature-extraction", {})])
def test_dropout_in_the_frozen_part_trains_the_same_with_and_without_the_cache(strategy, options):
    runs = []
    for cache in ("auto", "off"):
        torch.manual_seed(0)
        backbone = _dropout_backbone()
        _, data = tiny_data()
        cfg = config(epochs=3, cache=cache, head_solver="sgd")
        runs.append(train_classifier(data, backbone, strategy, cfg, strategy_options=options, log=quiet))
    cached, naive = runs
    assert any(r["cached"] for r in cached.history) and not any(r["cached"] for r in naive.history)
    for key in ("train_loss", "val_loss"):
        assert [r[key] for r in cached.history] == pytest.approx([r[key] for r in naive.history], abs=1e-5), key


def test_every_epoch_draws_a_new_order(monkeypatch):
    """Fabric re-creates the loader's sampler from its constructor arguments: the epoch must survive that."""
    from transferkit.data import sampler as sampler_module

    orders = []
    original = sampler_module.EpochSampler.__iter__

    def record(self):
        order = list(original(self))
        if self.shuffle:
            orders.append(order)
        return iter(order)

    monkeypatch.setattr(sampler_module.EpochSampler, "__iter__", record)
    backbone, data = tiny_data()
    train_classifier(data, backbone, "fine-tune", config(epochs=3), log=quiet)
    assert len(orders) == 3 and orders[0] != orders[1] != orders[2]
    assert all(sorted(o) == list(range(len(data.train))) for o in orders)  # a permutation every epoch
