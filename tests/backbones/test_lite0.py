"""The offline ImageNet weights really are ImageNet weights: a cat photo is classified as a cat."""

import pytest
import timm
import torch

from transferkit.backbones.weights import LITE_PACKAGES, convert_lite0, lite_package_file, read_state_dict

skimage_data = pytest.importorskip("skimage.data")
DOMESTIC_CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
SIZES = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


def _package_file(arch: str):
    path = lite_package_file(arch)
    if path is None:
        pytest.skip(f"{LITE_PACKAGES[arch]} is not installed")
    return path


@pytest.mark.parametrize("arch", sorted(SIZES))
def test_lite_package_maps_onto_timm_and_recognises_a_cat(arch):
    model = timm.create_model(arch, pretrained=False).eval()
    converted = convert_lite0(read_state_dict(_package_file(arch)), [len(s) for s in model.blocks])
    assert set(converted) == set(model.state_dict())
    model.load_state_dict(converted)
    image = torch.tensor(skimage_data.chelsea()).permute(2, 0, 1).float() / 255
    size = SIZES[arch]
    image = torch.nn.functional.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)
    with torch.no_grad():
        top5 = model((image - 0.5) / 0.5).topk(5).indices[0].tolist()
    assert top5[0] in DOMESTIC_CATS
    assert len(DOMESTIC_CATS & set(top5)) >= 2


@pytest.mark.parametrize("arch", sorted(SIZES))
def test_create_backbone_uses_the_package_weights(arch):
    from transferkit.backbones import create_backbone

    reference = read_state_dict(_package_file(arch))["_conv_stem.weight"]
    backbone = create_backbone(arch)
    assert torch.equal(backbone.model.conv_stem.weight, reference)
    assert backbone.data_config.mean == (0.5, 0.5, 0.5)
    assert backbone.data_config.input_size == SIZES[arch]


def test_the_pretrained_classifier_is_kept_outside_the_network_as_the_source_head():
    from transferkit.backbones import create_backbone

    path = _package_file("efficientnet_lite0")
    backbone = create_backbone("efficientnet_lite0").eval()
    full = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    full.load_state_dict(convert_lite0(read_state_dict(path), [len(s) for s in full.blocks]))
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(backbone.source_head(backbone.forward_features(x)), full(x), atol=1e-4)
    assert not any(k.startswith("classifier") for k in backbone.state_dict())  # not saved, not trained
    assert create_backbone("efficientnet_lite0", weights=None).source_head is None
