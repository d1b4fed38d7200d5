import pytest
import torch

from transferkit.backbones import create_backbone
from transferkit.errors import UnknownNameError

ARCHS = [
    "resnet18",
    "resnet50",
    "efficientnet_b0",
    "vgg16",
    "mobilenetv3_large_100",
    "densenet121",
    "convnext_tiny",
    "vit_base_patch16_224",
    "tv:resnet18",
    "tv:resnet50",
    "tv:efficientnet_b0",
    "tv:vgg16",
    "tv:mobilenet_v3_large",
    "tv:densenet121",
    "tv:convnext_tiny",
    "tv:vit_b_16",
]


@pytest.mark.parametrize("name", ARCHS)
def test_layer_groups_cover_every_parameter_once_in_depth_order(name):
    with torch.device("meta"):  # no memory, no init cost
        backbone = create_backbone(name, weights=None)
    groups = backbone.layer_groups()
    assert len(groups) >= 3
    ids = [id(p) for g in groups for p in g.parameters()]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in backbone.parameters()}
    # shallow → deep: every group's parameters come after the previous group's in registration order
    order = {id(p): i for i, p in enumerate(backbone.parameters())}
    firsts = [min(order[id(p)] for p in g.parameters()) for g in groups]
    assert firsts == sorted(firsts)


@pytest.mark.parametrize("name", ["resnet18", "tv:resnet18", "tv:vgg11", "mobilenetv3_small_050"])
def test_features_have_num_features_columns(name):
    backbone = create_backbone(name, weights=None).eval()
    with torch.no_grad():
        features = backbone.forward_features(torch.randn(2, 3, 64, 64))
    assert features.shape == (2, backbone.num_features)


def test_freezing_a_layer_group_freezes_the_network():
    backbone = create_backbone("resnet18", weights=None)
    first = backbone.layer_groups()[0]
    first.requires_grad_(False)
    assert not backbone.model.conv1.weight.requires_grad
    assert backbone.model.layer4[0].conv1.weight.requires_grad


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(UnknownNameError, match="resnet18"):
        create_backbone("resnet181", weights=None)
    with pytest.raises(UnknownNameError, match="Unknown backbone source"):
        create_backbone("keras:resnet18", weights=None)
