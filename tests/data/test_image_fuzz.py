"""Fuzzing the image loader: malformed bytes give a BadImageError or a valid image, nothing else."""

import io

import numpy as np
import pytest
from PIL import Image

from transferkit.data.images import load_image
from transferkit.errors import BadImageError

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray((rng.random((12, 10, 3)) * 255).astype(np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")}


def _check(data: bytes) -> None:
    try:
        image = load_image(data, max_pixels=1_000_000, name="fuzz")
    except BadImageError as exc:
        assert "fuzz" in str(exc)
        return
    assert image.ndim == 3 and image.shape[0] == 3 and image.dtype.is_floating_point
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.integers(0, 10_000),
)
def test_mutated_images_never_crash_the_loader(fmt, flips, cut):
    data = bytearray(SEEDS[fmt])
    for position, value in flips:
        data[position % len(data)] = value
    _check(bytes(data[: max(1, cut % (len(data) + 1))]))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_crash_the_loader(data):
    _check(data)


def test_the_unmutated_seeds_decode():
    for fmt, data in SEEDS.items():
        assert load_image(data).shape == (3, 12, 10), fmt
