"""Defect-inspection demo data from what ships offline: crops of scikit-image's texture photos
(``brick``, ``grass``, ``gravel``) as the normal surface, and the same kind of crops with a synthetic
defect and its exact mask — a scratch (a thin straight line, lighter or darker), a spot (a small
blotch) or a crack (a dark, jagged random walk). Written in MVTec AD's layout
(:mod:`transferkit.anomaly.data`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TEXTURES = ("brick", "grass", "gravel")
DEFECTS = ("scratch", "spot", "crack")


def texture(name: str) -> np.ndarray:
    """A scikit-image texture photo as (H, W) float in [0, 1]."""
    from skimage import data

    if name not in TEXTURES:
        raise ValueError(f"No texture {name!r}; available: {', '.join(TEXTURES)}.")
    image = np.asarray(getattr(data, name)(), np.float32) / 255.0
    return image.mean(-1) if image.ndim == 3 else image


def crop(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    y, x = (int(rng.integers(0, photo.shape[i] - size + 1)) for i in (0, 1))
    return photo[y : y + size, x : x + size].copy()


def _scratch(size: int, rng: np.random.Generator) -> np.ndarray:
    from skimage.draw import line_aa

    mask = np.zeros((size, size), np.float32)
    length, angle = rng.uniform(0.25, 0.5) * size, rng.uniform(0, np.pi)
    cy, cx = rng.uniform(0.25, 0.75, 2) * size
    dy, dx = np.sin(angle) * length / 2, np.cos(angle) * length / 2
    for offset in range(int(rng.integers(1, 3))):  # 1–2 px wide
        rows, cols, value = line_aa(int(cy - dy) + offset, int(cx - dx), int(cy + dy) + offset, int(cx + dx))
        keep = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
        mask[rows[keep], cols[keep]] = np.maximum(mask[rows[keep], cols[keep]], value[keep])
    return mask


def _spot(size: int, rng: np.random.Generator) -> np.ndarray:
    from skimage.draw import ellipse

    mask = np.zeros((size, size), np.float32)
    cy, cx = rng.uniform(0.2, 0.8, 2) * size
    radii = rng.uniform(0.03, 0.07, 2) * size
    mask[ellipse(cy, cx, radii[0], radii[1], shape=(size, size), rotation=rng.uniform(0, np.pi))] = 1.0
    return mask


def _crack(size: int, rng: np.random.Generator) -> np.ndarray:
    from skimage.draw import line

    mask = np.zeros((size, size), np.float32)
    y, x = rng.uniform(0.25, 0.75, 2) * size
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(12, 24))):
        heading += rng.normal(0, 0.6)
        ny, nx = y + 3 * np.sin(heading), x + 3 * np.cos(heading)
        rows, cols = line(int(y), int(x), int(ny), int(nx))
        keep = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)
        mask[rows[keep], cols[keep]] = 1.0
        y, x = ny, nx
    return mask


def add_defect(image: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(image with the defect, (H, W) bool mask of its pixels)."""
    shape = {"scratch": _scratch, "spot": _spot, "crack": _crack}[kind](image.shape[0], rng)
    if kind == "crack":
        target = np.full_like(image, 0.05)  # cracks are dark
    else:
        shift = rng.uniform(0.25, 0.45) * rng.choice([-1.0, 1.0])
        target = np.clip(image + shift, 0, 1)
    return image * (1 - shape) + target * shape, shape > 0.25


def write_defects(
    root: str | Path, name: str = "gravel", train: int = 60, test_good: int = 30, test_defect: int = 30,
    size: int = 128, seed: int = 0,
) -> Path:  # fmt: skip
    """``root`` in MVTec's layout for texture ``name``: normal crops under train/good and test/good; each
    defect kind under test/<kind>/ with its mask under ground_truth/<kind>/<stem>_mask.png."""
    root, rng = Path(root), np.random.default_rng(seed)
    photo = texture(name)

    def save(array: np.ndarray, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)

    for i in range(train):
        save(crop(photo, size, rng), root / "train" / "good" / f"{i:03d}.png")
    for i in range(test_good):
        save(crop(photo, size, rng), root / "test" / "good" / f"{i:03d}.png")
    for i in range(test_defect):
        kind = DEFECTS[i % len(DEFECTS)]
        image, mask = add_defect(crop(photo, size, rng), kind, rng)
        save(image, root / "test" / kind / f"{i:03d}.png")
        save(mask.astype(np.float32), root / "ground_truth" / kind / f"{i:03d}_mask.png")
    return root
