"""Synthetic crystal micrographs with exact instance masks: demo and benchmark data for counting and
measuring objects (detection and instance segmentation) that ships with nothing but NumPy and
scikit-image.

Each image is a 16-bit grayscale field: uneven illumination, dust specks, faceted crystals of three
habits (``hexagonal`` plates, ``cubic`` squares, ``needle`` prisms) at random positions, sizes and
angles, each with its own brightness (some barely above the field) and one darker facet, a
microscope's blur, and Poisson (shot) noise. About a third grow against another crystal and
overlap it (agglomerates: the later one on top), so instances touch and hide parts of each other —
what defeats thresholding and connected components on real micrographs. :func:`write_crystals`
saves them as TIFFs with a COCO file (``segmentation``: the exact polygon of a wholly visible
crystal, the RLE of the visible pixels of a partly hidden one; ``bbox``, ``area``, and the two
tips of each needle as ``keypoints`` ``tip_left``, ``tip_right``: its length is their distance;
plates and cubes have them unlabelled, visibility 0) — the layout ``transferkit detect fit`` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES = ("hexagonal", "cubic", "needle")
KEYPOINTS = ("tip_left", "tip_right")


@dataclass
class Crystal:
    """One crystal: its class index and polygon ((V, 2) x, y in pixels)."""

    label: int
    polygon: np.ndarray
    visible: np.ndarray | None = None  # (H, W) bool: the pixels not hidden by crystals drawn on top

    @property
    def keypoints(self) -> list[float]:
        """COCO keypoints [x, y, v] × 2: a needle's tips, the left one first, in COCO's coordinates (pixel
        corners: +0.5 on the pixel-centre polygon); zeros for other habits."""
        if self.label != CLASSES.index("needle"):
            return [0.0] * 6
        tips = sorted((self.polygon[0] + 0.5, self.polygon[3] + 0.5), key=lambda point: point[0])  # see _outline
        return [round(float(tips[0][0]), 2), round(float(tips[0][1]), 2), 2.0,
                round(float(tips[1][0]), 2), round(float(tips[1][1]), 2), 2.0]  # fmt: skip


def _outline(label: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A habit's outline around (0, 0), rotated at random: (V, 2) x, y."""
    if label == 0:  # hexagonal plate
        angles, radii = np.arange(6) * np.pi / 3, np.full(6, scale)
    elif label == 1:  # cubic: a square
        angles, radii = np.arange(4) * np.pi / 2 + np.pi / 4, np.full(4, scale)
    else:  # needle: an elongated hexagonal prism seen from the side
        length, width = scale * 1.8, scale * 0.35
        points = np.array([[-length, 0], [-length + width, -width], [length - width, -width], [length, 0],  # tips: 0, 3
                           [length - width, width], [-length + width, width]])  # fmt: skip
        angles, radii = np.arctan2(points[:, 1], points[:, 0]), np.hypot(points[:, 0], points[:, 1])
    turn = rng.uniform(0, 2 * np.pi)
    return np.stack([radii * np.cos(angles + turn), radii * np.sin(angles + turn)], 1)


def _place(size: int, count: int, rng: np.random.Generator, touching: float) -> list[Crystal]:
    """Up to ``count`` crystals inside the field. With probability ``touching`` a crystal grows against one
    already placed (its outline overlapping that one's: an agglomerate, drawn on top); otherwise it keeps
    clear of the others."""
    placed: list[tuple[float, float, float]] = []
    crystals = []
    for _ in range(count * 20):
        if len(crystals) == count:
            break
        label = int(rng.integers(len(CLASSES)))
        outline = _outline(label, rng, rng.uniform(0.06, 0.12) * size)
        reach = float(np.hypot(outline[:, 0], outline[:, 1]).max())
        if placed and rng.random() < touching:
            x, y, r = placed[int(rng.integers(len(placed)))]
            angle, gap = rng.uniform(0, 2 * np.pi), rng.uniform(0.55, 0.85) * (r + reach)
            cx, cy = x + gap * np.cos(angle), y + gap * np.sin(angle)
            if not (reach + 1 <= cx <= size - reach - 1 and reach + 1 <= cy <= size - reach - 1):
                continue
        else:
            cx, cy = rng.uniform(reach + 1, size - reach - 1, 2)
            if any(np.hypot(cx - x, cy - y) < reach + r + 2 for x, y, r in placed):
                continue
        placed.append((cx, cy, reach))
        crystals.append(Crystal(label, outline + [cx, cy]))
    return crystals


def outline_mask(crystal: Crystal, size: int) -> np.ndarray:
    """(size, size) bool: the pixels inside the crystal's whole outline, hidden or not."""
    from skimage.draw import polygon as fill

    mask = np.zeros((size, size), bool)
    mask[fill(crystal.polygon[:, 1], crystal.polygon[:, 0], (size, size))] = True
    return mask


def _visible(size: int, crystals: list[Crystal]) -> list[np.ndarray]:
    """Each crystal's visible pixels (H, W) bool: its outline less those drawn after it (on top)."""
    masks = [outline_mask(crystal, size) for crystal in crystals]
    for i in range(len(masks)):
        for above in masks[i + 1 :]:
            masks[i] &= ~above
    return masks


def _paint(size: int, crystals: list[Crystal], rng: np.random.Generator) -> np.ndarray:
    """Expected photon counts of the field (float), before blur and noise: uneven illumination, dust specks,
    each crystal of its own brightness (some barely above the field) with one darker facet."""
    from skimage.draw import disk
    from skimage.draw import polygon as fill

    yy, xx = np.mgrid[0:size, 0:size] / size
    tilt = rng.uniform(-0.5, 0.5, 2)
    field = 4000 * (1 + tilt[0] * (xx - 0.5) + tilt[1] * (yy - 0.5))
    for _ in range(int(rng.integers(0, 6))):  # dust: small dark specks, not crystals
        field[disk(tuple(rng.uniform(0, size, 2)), rng.uniform(1, 3), shape=(size, size))] *= 0.5
    for crystal in crystals:
        rows, cols = fill(crystal.polygon[:, 1], crystal.polygon[:, 0], (size, size))
        field[rows, cols] = rng.uniform(7000, 30000)
        centre = crystal.polygon.mean(0)
        facet = np.vstack([centre, crystal.polygon[:2]])  # one darker facet: centre and two vertices
        rows, cols = fill(facet[:, 1], facet[:, 0], (size, size))
        field[rows, cols] *= 0.75
    return field


def make_crystals(
    count: int, size: int = 128, seed: int = 0, per_image: tuple[int, int] = (2, 6), touching: float = 0.35
):
    """``count`` micrographs: a list of (H, W) uint16 images and, per image, its :class:`Crystal` list (each with
    its visible pixels in ``visible``; crystals hidden under others but for fewer than 20 pixels are left out)."""
    from skimage.filters import gaussian

    rng = np.random.default_rng(seed)
    images, instances = [], []
    for _ in range(count):
        crystals = _place(size, int(rng.integers(per_image[0], per_image[1] + 1)), rng, touching)
        blurred = gaussian(_paint(size, crystals, rng), sigma=1.0, preserve_range=True)
        noisy = rng.poisson(blurred / 4) * 4  # shot noise of a sensor at 4 counts per photon
        images.append(np.clip(noisy, 0, 65535).astype(np.uint16))
        for crystal, mask in zip(crystals, _visible(size, crystals)):
            crystal.visible = mask
        instances.append([c for c in crystals if c.visible.sum() >= 20])
    return images, instances


def _segmentation(crystal: Crystal) -> list | dict:
    """The exact polygon where the whole crystal shows; else the RLE of its visible pixels (COCO's two forms)."""
    from pycocotools import mask as mask_utils

    if np.array_equal(outline_mask(crystal, len(crystal.visible)), crystal.visible):
        # COCO's coordinates: pixel (c, r) spans [c, c + 1) × [r, r + 1), so the pixel-centre polygon moves by half
        return [(crystal.polygon + 0.5).round(2).reshape(-1).tolist()]
    rle = mask_utils.encode(np.asfortranarray(crystal.visible.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def coco_annotations(names: list[str], instances: list[list[Crystal]], size: int) -> dict:
    """A COCO dict for images ``names``: per crystal its ``segmentation`` (polygon, or RLE where partly
    hidden), ``bbox`` and ``area`` of the visible pixels, and ``keypoints`` (a hidden tip: visibility 1)."""
    images, annotations = [], []
    for image_id, (name, crystals) in enumerate(zip(names, instances), start=1):
        images.append({"id": image_id, "file_name": name, "width": size, "height": size})
        for crystal in crystals:
            ys, xs = np.nonzero(crystal.visible)
            box = [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())]
            keypoints = crystal.keypoints
            for k in (0, 3):  # a tip under another crystal is labelled but not visible
                if (
                    keypoints[k + 2]
                    and not crystal.visible[_pixel(keypoints[k + 1] - 0.5, size), _pixel(keypoints[k] - 0.5, size)]
                ):
                    keypoints[k + 2] = 1.0
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": crystal.label + 1,
                "segmentation": _segmentation(crystal), "bbox": box, "area": int(crystal.visible.sum()),
                "iscrowd": 0, "keypoints": keypoints, "num_keypoints": sum(v > 0 for v in keypoints[2::3]),
            })  # fmt: skip
    categories = [{"id": i + 1, "name": name, "keypoints": list(KEYPOINTS), "skeleton": [[1, 2]]}
                  for i, name in enumerate(CLASSES)]  # fmt: skip
    return {"images": images, "annotations": annotations, "categories": categories}


def _pixel(value: float, size: int) -> int:
    return min(max(int(value), 0), size - 1)


def write_crystals(root: str | Path, splits: dict[str, int], size: int = 128, seed: int = 0) -> Path:
    """``root/<split>/images/*.tif`` (16-bit) and ``root/<split>/annotations.json`` (COCO) per split."""
    import tifffile

    root = Path(root)
    for offset, (split, count) in enumerate(splits.items()):
        images, instances = make_crystals(count, size, seed=seed * 1000 + offset)
        folder = root / split / "images"
        folder.mkdir(parents=True, exist_ok=True)
        names = [f"crystal_{i:04d}.tif" for i in range(count)]
        for name, image in zip(names, images):
            tifffile.imwrite(folder / name, image)
        (root / split / "annotations.json").write_text(json.dumps(coco_annotations(names, instances, size)))
    return root
