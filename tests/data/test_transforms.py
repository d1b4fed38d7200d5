import numpy as np
import pytest
import torch

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
def test_presets_give_normalised_tensors_of_the_right_size(preset, auto):
    transform = build_transforms(preset, 12, (0.5,) * 3, (0.25,) * 3, train=True, auto_augment=auto)
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
