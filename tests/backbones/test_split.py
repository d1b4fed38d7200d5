"""Cutting a backbone at a layer-group boundary: top(bottom(x)) must equal the network."""

import pytest
import torch

from transferkit.backbones import create_backbone

from ..conftest import make_tiny_backbone


def _check_every_boundary(backbone, size):
    groups = [{n for n, _ in g.named_parameters()} for g in backbone.layer_groups()]
    x = torch.rand(2, 3, size, size)
    backbone.eval()
    expected = backbone.forward_features(x)
    for k in range(1, len(groups)):
        split = backbone.split(k)
        assert split is not None, f"{backbone.name} should split after group {k}"
        bottom = {id(p) for p in split.bottom.parameters()}
        assert bottom == {id(p) for g in backbone.layer_groups()[:k] for p in g.parameters()}
        assert torch.allclose(split.top(split.bottom(x)), expected, atol=1e-5)


def test_tiny_backbone_splits_at_every_group_boundary():
    _check_every_boundary(make_tiny_backbone(), 16)


@pytest.mark.parametrize("name", ["timm:resnet18", "timm:efficientnet_lite0", "tv:resnet18", "tv:mobilenet_v3_small"])
def test_real_cnns_split_at_every_group_boundary(name):
    _check_every_boundary(create_backbone(name, weights=None), 64)


def test_a_vit_is_not_a_chain_so_it_is_not_split():
    backbone = create_backbone("timm:vit_tiny_patch16_224", weights=None)
    assert all(backbone.split(k) is None for k in range(1, len(backbone.layer_groups())))


def test_out_of_range_index_has_no_split():
    backbone = make_tiny_backbone()
    assert backbone.split(0) is None
    assert backbone.split(len(backbone.layer_groups())) is None


def test_splits_are_not_registered_as_submodules():
    backbone = make_tiny_backbone()
    keys = set(backbone.state_dict())
    backbone.split(2)
    assert set(backbone.state_dict()) == keys
