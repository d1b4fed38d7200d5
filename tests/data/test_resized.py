"""Resizing once: the kept images are the loader's resize of each image, gray ones as one plane; past the
memory limit the loader resizes instead."""

import torch
from torch.utils.data import TensorDataset

from transferkit.data import TensorImageDataset
from transferkit.data.dataset import WithTransform
from transferkit.data.resized import resize_once
from transferkit.data.transforms import resized_uint8


def _images(gray: list[bool], size: int = 10) -> TensorImageDataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(len(gray), 3, size, size, generator=generator)
    for i, g in enumerate(gray):
        if g:
            images[i] = images[i, :1].expand(3, -1, -1)
    return TensorImageDataset(images, list(range(len(gray))))


def test_gray_images_are_kept_as_one_plane_equal_to_the_loaders_resize():
    dataset = _images([True] * 5)
    kept, note = resize_once(dataset, 16)
    assert isinstance(kept, TensorDataset) and "1 channel(s)" in note
    images, labels = kept.tensors
    assert images.dtype == torch.uint8 and images.shape == (5, 1, 16, 16) and labels.tolist() == [0, 1, 2, 3, 4]
    resize = resized_uint8(16)
    for i in range(5):
        assert torch.equal(images[i, 0], resize(dataset.raw(i))[0])


def test_one_colour_image_keeps_every_image_in_three_channels():
    dataset = _images([True, False, True])
    images, _ = resize_once(dataset, 12)[0].tensors
    assert images.shape == (3, 3, 12, 12)
    resize = resized_uint8(12)
    assert all(torch.equal(images[i], resize(dataset.raw(i))) for i in range(3))


def test_past_the_memory_limit_the_loader_resizes_and_says_why():
    dataset = _images([False] * 4)
    kept, note = resize_once(dataset, 16, max_gb=1e-9)
    assert isinstance(kept, WithTransform) and "cache_max_gb=1e-09" in note
    assert torch.equal(kept[2][0], resized_uint8(16)(dataset.raw(2)))
