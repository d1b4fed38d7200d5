"""Features pooled from several layer groups: widths, values, names, persistence."""

import numpy as np
import pytest
import torch

from transferkit.backbones.multi_depth import MultiDepthBackbone, group_output_module, resolve_layers
from transferkit.engine.model import build_model
from transferkit.errors import ConfigError

from ..conftest import make_tiny_backbone


def test_features_are_the_mean_pooled_outputs_of_the_chosen_groups():
    backbone = make_tiny_backbone(width=8)  # stages of 8, 16, 32, 32 channels; groups "0", "1", "2", "3"
    multi = MultiDepthBackbone(backbone, ["1", "last"])
    assert multi.num_features == 16 + 32 == sum(multi.widths())
    x = torch.rand(2, 3, 16, 16)
    net = backbone.model.eval()
    with torch.no_grad():
        stage1 = net[1](net[0](x))
        expected = torch.cat([stage1.mean(dim=(2, 3)), net(x)], dim=1)
        assert torch.allclose(multi.forward_features(x), expected, atol=1e-6)


def test_group_output_is_the_largest_module_holding_only_that_groups_parameters():
    backbone = make_tiny_backbone()
    names = [n for _, n in backbone._groups]
    assert group_output_module(backbone.model, names[1], names[1][-1]) == "1"


def test_unknown_layer_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match=r"No layer group 'layer9'.*Valid --layers: auto, last.*0, 1, 2, 3"):
        resolve_layers(make_tiny_backbone(), "1,layer9")


def test_layers_are_saved_in_the_spec_and_rebuilt():
    backbone = make_tiny_backbone()
    model = build_model(backbone, 3, layers=["2", "3"])
    assert model.spec()["layers"] == ["2", "3"] and model.head.fc.in_features == 64
    assert model.backbone.split(1) is None  # a cut would lose the shallower taps


def _colour_backbone():
    """The tiny backbone with ImageNet's per-channel statistics (so undoing them is really tested)."""
    from transferkit.backbones.base import DataConfig, ModelBackbone

    tiny = make_tiny_backbone(width=8)
    config = DataConfig(64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    return ModelBackbone("tiny", tiny.model, tiny.num_features, config, tiny._groups)


def test_hog_is_the_scaled_hog_descriptor_of_the_unnormalised_input_after_the_groups():
    from skimage.feature import hog

    from transferkit.backbones.multi_depth import HOG_SCALE

    backbone = _colour_backbone()
    multi = MultiDepthBackbone(backbone, ["hog", "last"])
    assert multi.layers == ["3", "hog"]  # groups first, then the input's descriptor
    gray = torch.rand(64, 64)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = ((gray.expand(3, 64, 64) - mean.view(3, 1, 1)) / std.view(3, 1, 1)).unsqueeze(0)
    expected = hog(gray.numpy(), orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), block_norm="L2-Hys")
    assert expected.shape == (7 * 7 * 2 * 2 * 9,)  # 64 px, 8-px cells: 7 × 7 blocks of 2 × 2 cells × 9 bins
    with torch.no_grad():
        got = multi.eval().forward_features(x)
    assert multi.widths() == [32, expected.size]
    np.testing.assert_allclose(got[0, 32:].numpy(), HOG_SCALE * expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        np.testing.assert_allclose(got[0, :32].numpy(), backbone.model.eval()(x)[0].numpy(), atol=1e-6)


def test_hog_alone_is_refused_and_listed_among_valid_layers():
    with pytest.raises(ConfigError, match=r"name a group too.*classical:hog"):
        resolve_layers(make_tiny_backbone(), "hog")
    with pytest.raises(ConfigError, match=r"\(and hog, the input's HOG descriptor"):
        resolve_layers(make_tiny_backbone(), "hogg")


def test_a_model_with_hog_is_saved_rebuilt_and_refused_by_export(tmp_path):
    from transferkit.engine.model import model_from_spec
    from transferkit.export import export_model

    model = build_model(_colour_backbone(), 3, layers=["last", "hog"], head="mlp").eval()
    assert model.spec()["layers"] == ["3", "hog"] and model.head.body[0].in_features == 32 + 1764
    rebuilt = model_from_spec(model.spec(), backbone=_colour_backbone())
    rebuilt.load_state_dict(model.state_dict())  # HOG has no weights: the same keys as without it
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt.eval()(x))
    with pytest.raises(ConfigError, match="HOG descriptors with scikit-image"):
        export_model(model, tmp_path / "model.onnx")
