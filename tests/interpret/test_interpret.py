"""Grad-CAM points at the evidence; CKA has its invariances; probes and t-SNE run on real pipelines."""

import numpy as np
import pytest
import torch
from torch import nn

from transferkit.errors import ConfigError
from transferkit.interpret import grad_cam, linear_cka, plot_embedding, probe_layers
from transferkit.interpret.gradcam import _as_maps, default_target_layer

from ..engine.helpers import tiny_data


def _bright_detector() -> nn.Module:
    """Class 0's logit is the mean brightness seen by one conv channel; class 1's its negative."""
    conv = nn.Conv2d(3, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, :, 1, 1] = 1.0
        conv.bias.zero_()
        fc = nn.Linear(2, 2)
        fc.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        fc.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)


def test_grad_cam_peaks_where_the_class_evidence_is():
    model = _bright_detector()
    image = torch.zeros(1, 3, 32, 32)
    image[..., 4:12, 20:28] = 1.0  # a bright square, top right
    assert default_target_layer(model, 32) == "1"  # the ReLU after the conv: deepest spatial output
    cam, classes = grad_cam(model, image, target_class=0)
    assert classes.tolist() == [0] and cam.shape == (1, 32, 32)
    inside, outside = cam[0, 4:12, 20:28].mean(), cam[0, 16:, :16].mean()
    assert inside > 0.8 and outside < 0.05


def test_vit_tokens_become_a_patch_grid():
    tokens = torch.randn(2, 1 + 49, 16)
    maps = _as_maps(tokens)
    assert maps.shape == (2, 16, 7, 7) and torch.equal(maps[:, :, 0, 0], tokens[:, 1])


def test_grad_cam_on_a_real_backbone_and_vit():
    from transferkit.backbones import create_backbone
    from transferkit.engine.model import build_model

    for name, size in (("timm:resnet18", 64), ("timm:vit_tiny_patch16_224", 224)):
        model = build_model(create_backbone(name, weights=None), 3)
        cam, _ = grad_cam(model, torch.rand(2, 3, size, size))
        assert cam.shape == (2, size, size) and torch.isfinite(cam).all()  # runs on a CNN and a ViT


def test_linear_cka_is_one_for_the_same_representation_and_invariant_to_rotation_and_scale():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100, 10, generator=g)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)
    assert linear_cka(x, torch.randn(100, 10, generator=g)) < 0.3


def test_per_layer_probes_find_the_classes_at_every_depth(tmp_path):
    backbone, data = tiny_data(n_per_class=12)
    curve = probe_layers(backbone, data.train_eval)
    assert len(curve) == len(backbone.layer_groups())
    assert all(0.5 < acc <= 1.0 for _, acc in curve), curve  # 3 separable classes: chance is 0.33
    features = np.random.default_rng(0).normal(size=(30, 5))
    path = plot_embedding(features, np.arange(30) % 3, ["a", "b", "c"], tmp_path / "tsne.png")
    assert path.stat().st_size > 0


def test_grad_cam_works_on_a_frozen_model_and_leaves_no_gradients():
    model = _bright_detector().requires_grad_(False)
    image = torch.zeros(1, 3, 32, 32)
    image[..., 4:12, 20:28] = 1.0
    cam, _ = grad_cam(model, image, target_class=0)
    assert cam[0, 4:12, 20:28].mean() > 0.8
    assert all(p.grad is None for p in model.parameters())


def test_cka_by_layer_sees_which_layers_fine_tuning_changed():
    import copy

    from transferkit.interpret import cka_by_layer, group_output_layers

    from ..conftest import make_tiny_backbone

    before = make_tiny_backbone()
    after = copy.deepcopy(before)
    with torch.no_grad():  # "fine-tune" only the deepest group
        for p in after.layer_groups()[-1].parameters():
            p.add_(torch.randn_like(p) * 0.5)
    layers = group_output_layers(before)
    images = torch.rand(64, 3, 16, 16)
    cka = cka_by_layer(before, after, layers, images)
    values = [cka[name] for name in layers]
    assert all(v == pytest.approx(1.0, abs=1e-6) for v in values[:-1]) and values[-1] < 0.99


class _UnusedDeepBranch(nn.Module):
    """Like a multi-depth model that taps a middle layer: the deepest conv runs, but the scores ignore it."""

    def __init__(self) -> None:
        super().__init__()
        self.used = _bright_detector()
        self.unused = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        self.unused(x)  # executed last, output dropped
        return self.used(x)


def test_the_default_layer_is_the_deepest_one_the_scores_depend_on():
    model = _UnusedDeepBranch()
    assert default_target_layer(model, 32) == "used.1"  # not "unused", the last spatial layer to run
    image = torch.zeros(1, 3, 32, 32)
    image[..., 4:12, 20:28] = 1.0
    assert grad_cam(model, image, target_class=0)[0][0, 4:12, 20:28].mean() > 0.8
    with pytest.raises(ConfigError, match="'unused' gets no gradient from the class scores"):
        grad_cam(model, image, target_layer="unused")


def test_a_model_without_a_network_is_refused_with_what_to_explain_instead():
    class Classical(nn.Module):  # e.g. HOG + SVM: buffers, no parameters
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("w", torch.ones(3, 2))

        def forward(self, x):
            return x.mean(dim=(2, 3)) @ self.w

    with pytest.raises(ConfigError, match=r"this model has none \(a classical baseline.*RUN/candidates/NAME/best.pt"):
        grad_cam(Classical(), torch.zeros(1, 3, 8, 8))
