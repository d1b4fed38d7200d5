"""Decode one image file into a float tensor, whatever its bit depth or channels.

Returns (3, H, W) float32 in [0, 1]. 16-bit images keep their precision (no 8-bit
round trip); grayscale is repeated to 3 channels; alpha is dropped; the first page of
a multi-page TIFF is used. Files whose header announces more than ``max_pixels``
pixels are refused before decoding (decompression bombs).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from transferkit.errors import BadImageError

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default warning threshold (~0.25 GiB of RGB)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def _to_unit_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        # 16-bit data often arrives as int32 (Pillow's mode "I"); scale by the 16-bit range
        top = 65535.0 if array.max(initial=0) <= 65535 else float(np.iinfo(array.dtype).max)
        return np.clip(array.astype(np.float32) / top, 0.0, 1.0)
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("the image holds NaN or infinite values")
    low, high = float(array.min(initial=0.0)), float(array.max(initial=0.0))
    if low >= 0.0 and high <= 1.0:
        return array
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def _to_planes(array: np.ndarray) -> np.ndarray:
    """(H, W, 1) for gray (alpha dropped), (H, W, 3) for colour."""
    if array.ndim == 2:
        return array[:, :, None]
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channels-first TIFF
    if array.ndim != 3:
        raise ValueError(f"expected a 2-D image, got an array of shape {array.shape}")
    channels = array.shape[2]
    if channels in (1, 2):  # gray, or gray + alpha: one plane, shown as three by load_image
        return array[:, :, :1]
    if channels in (3, 4):  # RGB, or RGBA: alpha dropped
        return array[:, :, :3]
    raise ValueError(f"{channels} channels; transferkit reads 1 (gray), 3 (RGB) or 4 (RGBA)")


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ValueError(
            f"{width}×{height} = {width * height:,} pixels exceeds max_pixels={max_pixels:,} (decompression-bomb "
            "guard); raise max_pixels if the file is trusted"
        )


def _read_tiff(path: Path | BinaryIO, max_pixels: int) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        shape = page.shape
        planar = len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 2, 3, 4)
        height, width = (shape[1], shape[2]) if planar else (shape[0], shape[1])
        _check_size(width, height, max_pixels)
        return page.asarray()


def _read_pillow(path: Path | BinaryIO, max_pixels: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            _check_size(*image.size, max_pixels)
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F", "L", "RGB"):
                return np.asarray(image)
            if image.mode in ("LA", "La"):
                return np.asarray(image.getchannel(0))
            return np.asarray(image.convert("RGB"))


TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def load_image(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None) -> Tensor:
    """Decode a file (or the bytes of one) to a (3, H, W) float32 tensor in [0, 1].

    A grayscale image is one plane shown as three channels (``expand``: resizing it costs a third, see
    ``transforms.SharedChannels``); ``clone()`` it before writing into it in place.

    Args:
        source: Path, or the encoded bytes (e.g. an HTTP upload).
        max_pixels: Decompression-bomb guard, checked from the header before decoding.
        name: What to call the image in errors (default: the path, or ``<bytes>``).

    Raises:
        BadImageError: the file is missing, corrupt, truncated, too large or of an unusable layout;
            the message names the file and the reason. No other exception escapes for bad content.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = Path(name or "<bytes>")
        handle: Path | BinaryIO = io.BytesIO(data)
        is_tiff = data[:4] in TIFF_MAGIC
    else:
        label = handle = Path(source)
        is_tiff = label.suffix.lower() in (".tif", ".tiff")
    try:
        array = _read_tiff(handle, max_pixels) if is_tiff else _read_pillow(handle, max_pixels)
        array = _to_planes(_to_unit_float(np.asarray(array)))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(label, f"decompression-bomb guard: {exc}") from None
    except UnidentifiedImageError:
        raise BadImageError(label, "not an image Pillow can identify (corrupt, or another file type)") from None
    except FileNotFoundError:
        raise BadImageError(label, "file not found") from None
    except (OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError) as exc:
        raise BadImageError(label, f"{exc}") from None
    except MemoryError:
        raise BadImageError(label, "decoding needs more memory than is available") from None
    except Exception as exc:  # noqa: BLE001 - malformed files reach odd corners of decoders
        raise BadImageError(label, f"decoder error ({type(exc).__name__}: {exc})") from None
    image = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image  # gray: one plane, three views of it
