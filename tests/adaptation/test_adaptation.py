"""Domain adaptation: each method's promise, and the trainer's no-peeking model selection."""

import numpy as np
import pytest
import torch
from torch import nn

from transferkit.adaptation import AdaptConfig, adapt, adaptation_methods, domain_shift, reverse_gradient
from transferkit.adaptation.cdan import CDAN
from transferkit.adaptation.coral import coral_loss
from transferkit.adaptation.dan import mk_mmd2
from transferkit.backbones import DataConfig, ModelBackbone
from transferkit.data import TensorImageDataset
from transferkit.errors import ConfigError, UnknownNameError


def test_gradient_reversal_is_identity_forward_and_flips_the_gradient_sign():
    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_gradient(x, coeff=0.5)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.equal(x.grad, -0.5 * torch.arange(3.0).expand(4, 3))


def test_mmd_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 5, generator=g), torch.randn(200, 5, generator=g)
    values = [float(mk_mmd2(x, y + shift)) for shift in (0.0, 0.5, 2.0)]
    assert abs(values[0]) < 0.02 and values[0] < values[1] < values[2]


def test_coral_is_zero_for_equal_covariances_and_positive_otherwise():
    x = torch.randn(100, 4)
    assert float(coral_loss(x, x + 3.0)) == pytest.approx(0.0, abs=1e-6)  # a shift of the mean is not CORAL's
    assert float(coral_loss(x, x * 3.0)) > 0.01


def test_domain_shift_measures_separate_same_from_shifted_domains():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    same, shifted = domain_shift(a, b), domain_shift(a, b + 2.0)
    assert same["proxy_a_distance"] < 0.5 and shifted["proxy_a_distance"] > 1.5
    for name in ("mmd", "wasserstein"):
        assert shifted[name] > same[name] * 3, name


def test_cdan_conditions_on_predictions_and_randomizes_large_maps():
    small, large = CDAN(8, 3), CDAN(256, 31)
    assert not small.randomized and large.randomized
    f, g = torch.randn(4, 8), torch.softmax(torch.randn(4, 3), 1)
    assert torch.allclose(small.multilinear(f, g).view(4, 3, 8), g[:, :, None] * f[:, None, :])


def _point_backbone() -> ModelBackbone:
    """A 'backbone' whose features are the 3 pixel values of a 1×1 image: DA on a known geometry."""
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Flatten())
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        net[0].bias.zero_()
    return ModelBackbone("points", net, 3, DataConfig(1, (0.0,) * 3, (1.0,) * 3), [("all", ["0.weight", "0.bias"])])


def _blobs(n, shift, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(2).repeat_interleave(n)
    centres = torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    x = centres[labels] + 0.35 * torch.randn(len(labels), 3, generator=g) + torch.tensor(shift)
    return TensorImageDataset(x.view(-1, 3, 1, 1), labels)


def _bottleneck_mmd(result, source, target) -> float:
    from transferkit.adaptation.measures import mmd

    with torch.no_grad():
        z_s = result.extra["source_body"].eval()(source.images.view(-1, 3)).numpy()
        z_t = result.model.head.body.eval()(target.images.view(-1, 3)).numpy()
    return mmd(z_s, z_t)


@pytest.mark.parametrize("method", ["dan", "coral", "dann", "cdan", "adda"])
def test_adaptation_makes_bottleneck_features_domain_invariant(method):
    """Target = source with a label-irrelevant feature stretched 4×: every method must shrink the
    source/target discrepancy of its features well below source-only training, keeping accuracy."""
    source, source_val = _blobs(100, [0, 0, 0], 0), _blobs(30, [0, 0, 0], 1)
    stretched = _blobs(100, [0, 0, 0], 2)
    images = stretched.images.clone()
    images[:, 2] *= 4.0
    target = TensorImageDataset(images, stretched.labels)

    def run(name):
        torch.manual_seed(0)
        cfg = AdaptConfig(method=name, epochs=30, batch_size=32, lr=3e-3, bottleneck=16, select="last")
        return adapt(_point_backbone(), ["a", "b"], source, source_val, target, target, cfg, log=lambda _: None)

    baseline, adapted = run("source-only"), run(method)
    base_mmd, adapted_mmd = _bottleneck_mmd(baseline, source, target), _bottleneck_mmd(adapted, source, target)
    assert adapted_mmd < 0.5 * base_mmd, (adapted_mmd, base_mmd)
    assert adapted.target_accuracy >= baseline.target_accuracy - 0.03
    assert adapted.oracle_target_accuracy >= adapted.target_accuracy
    assert adapted.source_val_accuracy > 0.9


def test_model_selection_ignores_target_labels():
    source, source_val = _blobs(60, [0, 0, 0], 0), _blobs(20, [0, 0, 0], 1)
    target = _blobs(60, [0, 0, 2.0], 2)
    cfg = AdaptConfig(method="dann", epochs=4, bottleneck=8)
    with_labels = adapt(_point_backbone(), ["a", "b"], source, source_val, target, target, cfg, log=lambda _: None)
    without = adapt(_point_backbone(), ["a", "b"], source, source_val, target, None, cfg, log=lambda _: None)
    assert with_labels.selected_epoch == without.selected_epoch
    assert without.target_accuracy is None and without.oracle_target_accuracy is None
    for a, b in zip(with_labels.model.state_dict().values(), without.model.state_dict().values()):
        assert torch.equal(a, b)


def test_bad_adaptation_config_is_clear():
    with pytest.raises(UnknownNameError, match="dann"):
        AdaptConfig(method="dan_n")
    with pytest.raises(ConfigError, match="select"):
        AdaptConfig(select="target")
    assert {"dan", "coral", "dann", "cdan", "adda", "source-only"} <= set(adaptation_methods.names())


def test_a_killed_adaptation_resumes_exactly_with_its_discriminator(tmp_path):
    from transferkit.engine.callbacks import Checkpointer

    from ..engine.test_trainer import _KillAt

    source, source_val, target = _blobs(40, [0, 0, 0], 0), _blobs(10, [0, 0, 0], 1), _blobs(40, [0, 0, 2.0], 2)
    cfg = AdaptConfig(method="dann", epochs=4, bottleneck=8, select="last")

    def run(out, *callbacks):
        torch.manual_seed(0)
        backbone = _point_backbone()
        return adapt(
            backbone, ["a", "b"], source, source_val, target, target, cfg, log=lambda _: None, callbacks=callbacks
        )

    full = run(tmp_path / "full", Checkpointer(tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", Checkpointer(tmp_path / "cut"), _KillAt(2))
    resumed = run(tmp_path / "cut", Checkpointer(tmp_path / "cut", resume=True))
    assert [r["adapt_loss"] for r in resumed.history] == [r["adapt_loss"] for r in full.history]
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_diverging_adaptation_is_the_training_loops_one_error():
    from transferkit.errors import TrainingError

    source, target = _blobs(20, [0, 0, 0], 0), _blobs(20, [0, 0, 1.0], 2)
    source.images[3] = float("nan")
    cfg = AdaptConfig(method="coral", epochs=1, bottleneck=8, backbone_groups=1)
    with pytest.raises(TrainingError, match=r"adapt \(coral\): the loss became nan at epoch 1, batch \d+ .*Lower --lr"):
        adapt(_point_backbone(), ["a", "b"], source, source, target, None, cfg, log=lambda _: None)
