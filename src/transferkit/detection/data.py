"""Boxes in the formats users already have: COCO JSON or YOLO txt, checked once.

Layouts: ``DATA/annotations.json`` (COCO: images, annotations with ``bbox`` = [x, y, w, h] in
pixels, categories) beside ``DATA/images/``; or ``DATA/images/`` with ``DATA/labels/NAME.txt``
(YOLO: one ``class cx cy w h`` line per box, normalised to [0, 1]) and ``DATA/classes.txt``. The
same under ``DATA/train/`` and ``DATA/val/`` (and optionally ``DATA/test/``).

A box outside its image (by more than a pixel) or without area, a class outside the categories
and an annotation of a missing image are errors naming the file and the fix.
"""

from __future__ import annotations

import json
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

from transferkit.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, load_image
from transferkit.errors import DataError


@dataclass
class Annotated:
    """One image's boxes: (n, 4) x1 y1 x2 y2 in pixels, class indices 0…K-1."""

    path: Path
    boxes: np.ndarray
    labels: np.ndarray


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def check_boxes(item: Annotated, source: Path, num_classes: int) -> None:
    width, height = _size(item.path)
    for box, label in zip(item.boxes, item.labels):
        x1, y1, x2, y2 = box.tolist()
        if not (-1 <= x1 < x2 <= width + 1 and -1 <= y1 < y2 <= height + 1):
            raise DataError(
                f"{source}: box {[round(v, 1) for v in (x1, y1, x2, y2)]} (x1 y1 x2 y2) of {item.path.name} is "
                f"outside its {width}×{height} image or has no area. Fix or remove that annotation."
            )
        if not 0 <= label < num_classes:
            raise DataError(f"{source}: {item.path.name} has a box of class {label}, outside 0…{num_classes - 1}.")


def read_coco(json_path: Path, images_dir: Path) -> tuple[list[str], list[Annotated]]:
    """Classes (by category id order) and boxes of a COCO file; every image of it must exist."""
    coco = json.loads(json_path.read_text())
    categories = sorted(coco.get("categories", []), key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(categories)}
    items: dict[int, Annotated] = {}
    for image in coco.get("images", []):
        path = images_dir / image["file_name"]
        if not path.is_file():
            raise DataError(f"{json_path} lists image {image['file_name']!r}, which is not in {images_dir}.")
        items[image["id"]] = Annotated(path, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    for ann in coco.get("annotations", []):
        if ann["image_id"] not in items or ann["category_id"] not in index:
            raise DataError(f"{json_path}: annotation {ann.get('id')} names an unknown image or category.")
        x, y, w, h = ann["bbox"]
        item = items[ann["image_id"]]
        item.boxes = np.vstack([item.boxes, np.array([[x, y, x + w, y + h]], np.float32)])
        item.labels = np.append(item.labels, index[ann["category_id"]])
    names = [c["name"] for c in categories]
    for item in items.values():
        check_boxes(item, json_path, len(names))
    return names, list(items.values())


def read_yolo(folder: Path) -> tuple[list[str], list[Annotated]]:
    """Classes (``classes.txt``) and boxes of a YOLO folder; images without a label file have no boxes."""
    classes_file = folder / "classes.txt"
    if not classes_file.is_file():
        classes_file = folder.parent / "classes.txt"
    if not classes_file.is_file():
        raise DataError(f"{folder} has YOLO labels but no classes.txt (one class name per line) beside them.")
    names = [n.strip() for n in classes_file.read_text().splitlines() if n.strip()]
    items = []
    for path in sorted(p for p in (folder / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        label_file = folder / "labels" / f"{path.stem}.txt"
        lines = label_file.read_text().splitlines() if label_file.is_file() else []
        rows = [line.split() for line in lines if line.strip()]
        if any(len(r) != 5 for r in rows):
            raise DataError(f"{label_file}: each line must be 'class cx cy w h' (5 numbers).")
        width, height = _size(path)
        values = np.array(rows, np.float32).reshape(-1, 5)
        cx, cy, w, h = values[:, 1] * width, values[:, 2] * height, values[:, 3] * width, values[:, 4] * height
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        item = Annotated(path, boxes.astype(np.float32), values[:, 0].astype(np.int64))
        check_boxes(item, label_file, len(names))
        items.append(item)
    return names, items


def read_folder(folder: Path) -> tuple[list[str], list[Annotated]]:
    if (folder / "annotations.json").is_file():
        return read_coco(folder / "annotations.json", folder / "images")
    if (folder / "labels").is_dir():
        return read_yolo(folder)
    raise DataError(f"{folder} has neither annotations.json (COCO) nor labels/ (YOLO) beside images/.")


class BoxFolder(Dataset):
    """Annotated images → ((3, S, S) float image in [0, 1], {"boxes" (n, 4) xyxy, "labels" (n,) 1…K})."""

    def __init__(self, items: list[Annotated], size: int, train: bool, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.items, self.max_pixels = items, max_pixels
        flips = [T.RandomHorizontalFlip()] if train else []
        self.transform = T.Compose([T.Resize((size, size), antialias=True), *flips, T.SanitizeBoundingBoxes()])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        item = self.items[index]
        image = load_image(item.path, self.max_pixels)
        boxes = tv_tensors.BoundingBoxes(torch.as_tensor(item.boxes).reshape(-1, 4), format="XYXY",
                                         canvas_size=tuple(image.shape[-2:]))  # fmt: skip
        target = {"boxes": boxes, "labels": torch.as_tensor(item.labels) + 1}  # 0 is the background
        image, target = self.transform(tv_tensors.Image(image), target)
        return image.as_subclass(Tensor), {"boxes": target["boxes"].as_subclass(Tensor), "labels": target["labels"]}


def collate(batch: list) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    return [image for image, _ in batch], [target for _, target in batch]


@dataclass
class DetectionData:
    classes: list[str]
    train: BoxFolder
    val: BoxFolder
    test: BoxFolder | None
    size: int


def load_detection_data(root: str | Path, size: int = 128, val_fraction: float = 0.2, seed: int = 0) -> DetectionData:
    root = Path(root)
    if (root / "train").is_dir():
        classes, train = read_folder(root / "train")
        val = read_folder(root / "val")[1] if (root / "val").is_dir() else []
        test = read_folder(root / "test")[1] if (root / "test").is_dir() else None
    else:
        (classes, train), val, test = read_folder(root), [], None
    if not val:
        shuffled = train[:]
        random.Random(seed).shuffle(shuffled)
        cut = max(1, round(len(shuffled) * val_fraction))
        val, train = shuffled[:cut], shuffled[cut:]
    return DetectionData(classes, BoxFolder(train, size, True), BoxFolder(val, size, False),
                         BoxFolder(test, size, False) if test else None, size)  # fmt: skip
