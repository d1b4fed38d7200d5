import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T

from transferkit.data import TensorImageDataset, build_transforms, compute_mean_std
from transferkit.data.transforms import RandomRot90
from transferkit.errors import ConfigError


def test_rot90_produces_all_four_orientations():
    image = torch.arange(9.0).reshape(1, 3, 3).expand(3, 3, 3)
    seen = {tuple(RandomRot90()(image)[0].flatten().tolist()) for _ in range(200)}
    assert len(seen) == 4


def test_microscopy_preset_keeps_scale_and_uses_given_stats():
    transform = build_transforms("microscopy", 8, (0.5,) * 3, (0.5,) * 3, train=True)
    names = [type(t).__name__ for t in transform.transforms]
    assert {"RandomHorizontalFlip", "RandomVerticalFlip", "RandomRot90"} <= set(names)
    assert "RandomResizedCrop" not in names
    image = torch.full((3, 8, 8), 0.5)
    assert torch.allclose(transform(image), torch.zeros(3, 8, 8), atol=0.11)  # ±10 % jitter around the mean


@pytest.mark.parametrize("preset", ["none", "light", "strong", "microscopy"])
@pytest.mark.parametrize("auto", ["none", "randaugment", "trivialaugment"])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])  # bicubic: EfficientNet-Lite's data config
def test_presets_give_normalised_tensors_of_the_right_size(preset, auto, interpolation):
    transform = build_transforms(preset, 12, (0.5,) * 3, (0.25,) * 3, True, auto, interpolation)
    for seed in range(20):  # RandAugment's rotations and shears included (tensors: nearest/bilinear only)
        torch.manual_seed(seed)
        out = transform(torch.rand(3, 20, 30))
        assert out.shape == (3, 12, 12) and out.dtype == torch.float32


def test_unknown_preset():
    with pytest.raises(ConfigError, match="Available: none, light, strong, microscopy"):
        build_transforms("heavy", 8, (0,) * 3, (1,) * 3, train=True)


def test_dataset_mean_std_matches_numpy():
    images = (torch.rand(10, 3, 6, 6) * 255).to(torch.uint8)
    mean, std = compute_mean_std(TensorImageDataset(images, [0] * 10), batch_size=4)
    pixels = images.numpy().astype(np.float64) / 255
    assert np.allclose(mean, pixels.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(std, pixels.std(axis=(0, 2, 3)), atol=1e-6)


@pytest.mark.parametrize("preset", ["none", "light", "strong", "microscopy"])
@pytest.mark.parametrize("train", [False, True])
def test_a_gray_plane_shown_as_three_channels_transforms_like_three_real_copies(preset, train):
    """The shared-plane shortcut must not change a single value nor the random stream: the same
    seed on an expanded plane and on three materialised copies gives identical outputs."""
    transform = build_transforms(preset, 12, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), train=train)
    plane = torch.rand(1, 20, 30)
    outputs = []
    for image in (plane.expand(3, -1, -1), plane.repeat(3, 1, 1)):
        torch.manual_seed(7)
        outputs.append(torch.stack([transform(image) for _ in range(5)]))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-6)


def test_shared_plane_resize_runs_once_not_three_times():
    calls = []
    from transferkit.data.transforms import SharedChannels

    class Spy(torch.nn.Module):
        def forward(self, image):
            calls.append(image.shape[0])
            return image

    SharedChannels(Spy())(torch.rand(1, 4, 4).expand(3, -1, -1))
    SharedChannels(Spy())(torch.rand(3, 4, 4))
    assert calls == [1, 3]


def test_transform_batch_equals_one_call_per_image_in_order():
    from transferkit.backbones import DataConfig
    from transferkit.data.transforms import eval_transform, transform_batch

    transform = eval_transform(DataConfig(12, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)))
    gray = torch.rand(1, 20, 30)
    images = [
        torch.rand(3, 20, 30),
        gray.expand(3, -1, -1),
        torch.rand(3, 7, 9),
        torch.rand(3, 20, 30),
        gray.repeat(3, 1, 1),
    ]
    expected = torch.stack([transform(image) for image in images])
    torch.testing.assert_close(transform_batch(transform, images), expected, rtol=0, atol=1e-6)


class _Spy(torch.nn.Module):
    """A policy that records the size of what it was given and returns it unchanged."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def forward(self, image):
        self.sizes.append(tuple(image.shape[-2:]))
        return image


@pytest.mark.parametrize("source, policy_size", [((20, 24), (20, 24)), ((40, 50), (32, 32))])
def test_a_policy_runs_at_the_smaller_of_the_source_and_output_sizes(source, policy_size):
    from transferkit.data.transforms import PolicyAtSmallerSize

    spy = _Spy()
    step = PolicyAtSmallerSize(T.Resize((32, 32), antialias=True), spy, 32)
    out = step(torch.rand(3, *source))
    assert spy.sizes == [policy_size] and out.shape == (3, 32, 32)


def test_randaugment_on_a_small_gray_image_runs_on_one_plane_and_keeps_it_gray():
    transform = build_transforms("light", 32, [0.5] * 3, [0.5] * 3, True, "randaugment")
    torch.manual_seed(0)
    gray = torch.rand(1, 12, 12).expand(3, 12, 12)
    for _ in range(20):
        out = transform(gray)
        assert out.shape == (3, 32, 32) and torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
