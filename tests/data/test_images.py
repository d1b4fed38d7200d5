import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from transferkit.data.images import load_image
from transferkit.errors import BadImageError


def test_grayscale_becomes_three_equal_channels(tmp_path):
    Image.fromarray(np.full((5, 7), 51, np.uint8)).save(tmp_path / "g.png")
    image = load_image(tmp_path / "g.png")
    assert image.shape == (3, 5, 7) and image.dtype == torch.float32
    assert torch.allclose(image, torch.full((3, 5, 7), 0.2))


def test_rgba_drops_alpha(tmp_path):
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[..., 0], pixels[..., 3] = 255, 10
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.shape == (3, 4, 4)
    assert torch.equal(image[0], torch.ones(4, 4)) and image[1:].sum() == 0


def test_16bit_png_keeps_precision(tmp_path):
    pixels = np.array([[0, 1000], [1001, 65535]], np.uint16)
    Image.fromarray(pixels).save(tmp_path / "d.png")
    image = load_image(tmp_path / "d.png")
    assert image[0, 1, 1] == 1.0
    assert image[0, 1, 0] > image[0, 0, 1]  # 1000 vs 1001 survive: no 8-bit round trip


@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 3), (3, 6, 5)])
def test_16bit_tiff_gray_rgb_and_planar(tmp_path, shape):
    pixels = (np.arange(np.prod(shape)).reshape(shape) * 700).astype(np.uint16)
    planar = {"photometric": "rgb", "planarconfig": "separate"} if shape[0] == 3 else {}
    tifffile.imwrite(tmp_path / "t.tif", pixels, **planar)
    image = load_image(tmp_path / "t.tif")
    assert image.shape == (3, 6, 5)
    assert 0.0 <= image.min() and image.max() <= 1.0
    expected = pixels.astype(np.float32) / 65535
    first = expected if pixels.ndim == 2 else (expected[..., 0] if shape[-1] == 3 else expected[0])
    assert np.allclose(image[0].numpy(), first)


def test_corrupt_file_names_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image at all")
    with pytest.raises(BadImageError, match="bad.png"):
        load_image(tmp_path / "bad.png")


def test_truncated_file_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImageError, match="truncated"):
        load_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_decompression_bomb_is_refused_before_decoding(tmp_path, suffix):
    path = tmp_path / f"big.{suffix}"
    if suffix == "png":
        Image.new("L", (400, 300)).save(path)
    else:
        tifffile.imwrite(path, np.zeros((300, 400), np.uint8))
    with pytest.raises(BadImageError, match="decompression-bomb"):
        load_image(path, max_pixels=100_000)
    assert load_image(path, max_pixels=120_000).shape == (3, 300, 400)


def test_palette_and_cmyk_images(tmp_path):
    Image.new("P", (3, 3), 5).save(tmp_path / "p.png")
    Image.new("CMYK", (3, 3), (0, 0, 0, 0)).save(tmp_path / "c.jpg")
    assert load_image(tmp_path / "p.png").shape == (3, 3, 3)
    assert load_image(tmp_path / "c.jpg").shape == (3, 3, 3)


def test_an_epoch_of_items_reads_each_label_once_not_the_whole_list_per_item():
    """100k samples: ``dataset[i]`` must not rebuild the label list (that made an epoch O(N²))."""
    import torch

    from transferkit.data import TensorImageDataset, WithTransform

    class Counted(TensorImageDataset):
        whole_list_reads = 0

        @property
        def labels(self):
            Counted.whole_list_reads += 1
            return super().labels

    n = 100_000
    base = Counted(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n) % 7)
    view = WithTransform(base, None)
    assert [view[i][1] for i in range(0, n, 1000)] == [i % 7 for i in range(0, n, 1000)]
    for i in range(n):
        view[i]
    assert Counted.whole_list_reads == 0
