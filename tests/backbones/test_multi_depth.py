"""Features pooled from several layer groups: widths, values, names, persistence."""

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
