"""Image + mask folders for semantic segmentation.

Layout: ``DATA/images/NAME.ext`` with ``DATA/masks/NAME.png`` (any image suffix), or the same
under ``DATA/train/``, ``DATA/val/`` (and optionally ``DATA/test/``). A mask holds one class id
per pixel (mode ``L``, ``I;16`` or a palette ``P`` image's indices); 255 means "ignore". Colour
masks are read through ``DATA/classes.txt`` lines ``name r g b``; lines of one word only name the
classes (line ``i`` is class ``i``). Without ``classes.txt`` the classes are ``0 … max id``.

Every pair is checked once: a mask whose size differs from its image's, a class id out of range
and an image without a mask are errors naming the file and the fix.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2 as T
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors

from transferkit.backbones.base import DataConfig
from transferkit.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, load_image
from transferkit.errors import DataError

IGNORE = 255
Pair = tuple[Path, Path]


def _files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def find_pairs(folder: str | Path) -> list[Pair]:
    """(image, mask) pairs of ``folder/images`` and ``folder/masks``, matched by file stem."""
    folder = Path(folder)
    images_dir, masks_dir = folder / "images", folder / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DataError(
            f"{folder} needs an images/ and a masks/ folder (or train/ and val/ holding them); "
            f"found {sorted(p.name for p in folder.iterdir()) if folder.is_dir() else 'no such folder'}."
        )
    images, masks = _files(images_dir), _files(masks_dir)
    lonely = [images[s].name for s in images if s not in masks]
    if lonely:
        raise DataError(
            f"{len(lonely)} image(s) in {images_dir} have no mask in {masks_dir}, e.g. {lonely[:3]}. "
            "Give each image a mask with the same name (any image suffix), or move it out."
        )
    if not images:
        raise DataError(f"No images in {images_dir}.")
    return [(images[s], masks[s]) for s in images]


def read_classes(root: Path) -> tuple[list[str] | None, dict[tuple[int, int, int], int] | None]:
    """Class names and, for colour masks, the colour → class id map, from ``root/classes.txt``."""
    file = root / "classes.txt"
    if not file.is_file():
        return None, None
    names, colours = [], {}
    for number, line in enumerate(filter(None, (x.strip() for x in file.read_text().splitlines())), 1):
        fields = line.split()
        if len(fields) not in (1, 4) or (len(fields) == 4 and not all(f.isdigit() for f in fields[1:])):
            raise DataError(f"{file}, line {number}: expected 'name' or 'name r g b', got {line!r}.")
        if len(fields) == 4:
            colours[tuple(int(v) for v in fields[1:])] = len(names)
        names.append(fields[0])
    return names, (colours or None)


def read_mask(path: Path, colours: dict[tuple[int, int, int], int] | None = None) -> np.ndarray:
    """(H, W) int64 class ids of a mask file (colour masks through ``colours``)."""
    with Image.open(path) as image:
        array = np.asarray(image)
    if array.ndim == 3:
        rgb = array[..., :3].astype(np.int64)
        if colours is None:
            if (rgb == rgb[..., :1]).all():
                return rgb[..., 0]
            raise DataError(
                f"{path} is a colour mask but no classes.txt maps its colours. Save masks as class-id PNGs "
                "(mode L or P), or list the classes as 'name r g b' lines in classes.txt beside images/."
            )
        ids = np.full(rgb.shape[:2], -1, dtype=np.int64)
        for colour, index in colours.items():
            ids[(rgb == np.array(colour)).all(-1)] = index
        if (ids < 0).any():
            y, x = np.argwhere(ids < 0)[0]
            raise DataError(f"{path}: pixel ({x}, {y}) has colour {tuple(rgb[y, x])}, which classes.txt does not list.")
        return ids
    return array.astype(np.int64)


def check_pair(image: Path, mask: Path, num_classes: int | None, colours=None) -> int:
    """The largest class id of ``mask`` (ignoring 255), after checking it against ``image``."""
    ids = read_mask(mask, colours)
    with Image.open(image) as img:
        width, height = img.size
    if ids.shape != (height, width):
        raise DataError(
            f"{mask} is {ids.shape[1]}×{ids.shape[0]} but its image {image} is {width}×{height}. "
            "A mask must have its image's size (one class id per pixel)."
        )
    valid = ids[ids != IGNORE]
    top = int(valid.max(initial=0))
    if valid.size and (valid.min() < 0 or (num_classes is not None and top >= num_classes)):
        bad = int(valid.min()) if valid.min() < 0 else top
        raise DataError(
            f"{mask} holds class id {bad}, outside 0…{(num_classes or 1) - 1} (255 = ignore). "
            "Fix the mask, or list every class in classes.txt."
        )
    return top


class MaskFolder(Dataset):
    """(image, mask) pairs → (normalised (3, S, S) float image, (S, S) int64 mask); ``train`` augments both."""

    def __init__(
        self, pairs: list[Pair], data_config: DataConfig, size: int, train: bool, colours=None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:  # fmt: skip
        self.pairs, self.colours, self.max_pixels = list(pairs), colours, max_pixels
        interp = T.InterpolationMode(data_config.interpolation)  # images; masks are always resized nearest
        geometry: list[T.Transform] = (
            [
                T.RandomResizedCrop(size, scale=(0.5, 1.0), interpolation=interp, antialias=True),
                T.RandomHorizontalFlip(),
            ]
            if train
            else [T.Resize((size, size), interpolation=interp, antialias=True)]
        )
        self.transform = T.Compose([*geometry, T.Normalize(list(data_config.mean), list(data_config.std))])

    def __len__(self) -> int:
        return len(self.pairs)

    def raw(self, index: int) -> tuple[Tensor, Tensor]:
        image_path, mask_path = self.pairs[index]
        image = load_image(image_path, self.max_pixels)
        return image, torch.from_numpy(read_mask(mask_path, self.colours))

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image, mask = self.raw(index)
        image, mask = self.transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return image.as_subclass(Tensor), mask.as_subclass(Tensor).long()


@dataclass
class SegmentationData:
    classes: list[str]
    train: MaskFolder
    val: MaskFolder
    test: MaskFolder | None
    data_config: DataConfig
    size: int

    def pixel_counts(self) -> np.ndarray:
        """Training pixels per class (at the files' own size): for class weights."""
        counts = np.zeros(len(self.classes), dtype=np.float64)
        for _, mask in self.train.pairs:
            ids = read_mask(mask, self.train.colours)
            counts += np.bincount(ids[ids != IGNORE].ravel(), minlength=len(self.classes))[: len(self.classes)]
        return counts


def load_segmentation_data(
    root: str | Path, data_config: DataConfig, size: int | None = None, val_fraction: float = 0.2, seed: int = 0
) -> SegmentationData:
    """Checked pairs of ``root`` split into train / val (/ test), with transforms for ``data_config``."""
    root = Path(root)
    names, colours = read_classes(root)
    if (root / "train").is_dir():
        train = find_pairs(root / "train")
        val = find_pairs(root / "val") if (root / "val").is_dir() else []
        test = find_pairs(root / "test") if (root / "test").is_dir() else None
    else:
        train, val, test = find_pairs(root), [], None
    if not val:
        shuffled = train[:]
        random.Random(seed).shuffle(shuffled)
        cut = max(1, round(len(shuffled) * val_fraction))
        val, train = sorted(shuffled[:cut]), sorted(shuffled[cut:])
    every = train + val + (test or [])
    top = max(check_pair(image, mask, len(names) if names else None, colours) for image, mask in every)
    classes = names or [str(i) for i in range(top + 1)]
    if len(classes) < 2:
        raise DataError(f"The masks of {root} hold one class only (id 0): nothing to segment.")
    size = size or data_config.input_size
    if size % 32:
        fix = size // 32 * 32 or 32
        raise DataError(f"--image-size {size} is not a multiple of 32, which the decoders need. Use {fix}.")
    config = DataConfig(size, data_config.mean, data_config.std, data_config.interpolation)
    make = lambda pairs, train_: MaskFolder(pairs, config, size, train_, colours)  # noqa: E731
    test_set = make(test, False) if test else None
    return SegmentationData(classes, make(train, True), make(val, False), test_set, config, size)
