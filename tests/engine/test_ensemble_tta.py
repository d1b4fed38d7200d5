"""Ensembles average class probabilities; test-time views average them too."""

import pytest
import torch
from torch.nn import functional as F

from transferkit.backbones import DataConfig
from transferkit.engine.ensemble import EnsembleModel
from transferkit.engine.model import build_model, load_model
from transferkit.errors import ConfigError

from ..conftest import make_tiny_backbone


def _member(seed: int, size: int, mean: float, std: float):
    torch.manual_seed(seed)
    config = DataConfig(size, (mean,) * 3, (std,) * 3, "bilinear")
    return build_model(make_tiny_backbone(), 3, ["a", "b", "c"], data_config=config).eval()


def test_ensemble_output_is_the_log_of_the_weighted_mean_of_member_probabilities():
    small, large = _member(0, 16, 0.5, 0.25), _member(1, 32, 0.0, 1.0)
    ensemble = EnsembleModel([small, large], weights=[1.0, 3.0]).eval()
    images = torch.rand(4, 3, 32, 32)  # raw [0, 1] at the largest member's size
    with torch.no_grad():
        resized = F.interpolate(images, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
        p_small = small((resized - 0.5) / 0.25).softmax(1)
        p_large = large(images).softmax(1)
        expected = 0.25 * p_small + 0.75 * p_large
        assert torch.allclose(ensemble(images).softmax(1), expected, atol=1e-6)
    assert ensemble.data_config.input_size == 32 and ensemble.data_config.mean == (0.0, 0.0, 0.0)


def test_ensemble_saves_and_loads_like_one_model(tmp_path, monkeypatch):
    import transferkit.engine.model as model_module

    members = [_member(0, 16, 0.5, 0.25), _member(1, 16, 0.5, 0.25)]
    ensemble = EnsembleModel(members).eval()
    ensemble.save(tmp_path / "best.pt")
    # the tiny test backbone is not a registered name: rebuild it when the spec asks for "tiny"
    real = model_module.create_backbone
    monkeypatch.setattr(
        model_module, "create_backbone", lambda n, **kw: make_tiny_backbone() if n == "tiny" else real(n, **kw)
    )
    loaded = load_model(tmp_path / "best.pt")
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(loaded(images), ensemble(images))


def test_ensemble_members_must_share_classes():
    other = build_model(make_tiny_backbone(), 3, ["a", "b", "x"])
    with pytest.raises(ConfigError, match="same classes"):
        EnsembleModel([_member(0, 16, 0.5, 0.25), other])


@pytest.mark.parametrize("mode, views", [("flip", 2), ("dihedral", 8)])
def test_tta_averages_probabilities_over_the_views(mode, views):
    model = _member(0, 16, 0.5, 0.25)
    images = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        plain = [model(v).softmax(1) for v in _views(images, mode)]
        model.tta = mode
        averaged = model(images).softmax(1)
    assert len(plain) == views
    assert torch.allclose(averaged, torch.stack(plain).mean(0), atol=1e-6)
    assert model.spec()["tta"] == mode


def _views(images, mode):
    if mode == "flip":
        return [images, torch.flip(images, dims=[3])]
    rotated = [torch.rot90(images, k, dims=(2, 3)) for k in range(4)]
    return rotated + [torch.flip(r, dims=[3]) for r in rotated]


def test_tta_is_off_while_training():
    model = _member(0, 16, 0.5, 0.25)
    model.tta = "flip"
    model.train()
    images = torch.rand(2, 3, 16, 16)
    logits = model(images)
    model.tta = "none"
    assert torch.allclose(logits, model(images))  # same BN batch statistics, same single view
