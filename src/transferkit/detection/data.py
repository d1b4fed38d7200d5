"""Boxes (and instance masks) in the formats users already have: COCO JSON or YOLO txt, checked once.

Layouts: ``DATA/annotations.json`` (COCO: images, annotations with ``bbox`` = [x, y, w, h] in
pixels, for instance masks ``segmentation`` as polygons or RLE, for keypoints ``keypoints`` as
[x, y, visibility] × K with the names in each category's ``keypoints``; categories) beside
``DATA/images/``; or ``DATA/images/`` with ``DATA/labels/NAME.txt`` (YOLO: one ``class cx cy w h``
line per box, normalised to [0, 1]) and ``DATA/classes.txt``. The same under ``DATA/train/`` and
``DATA/val/`` (and optionally ``DATA/test/``).

A box outside its image (by more than a pixel) or without area, a class outside the categories,
an annotation of a missing image, a polygon of fewer than 3 points, an RLE of another size than
its image, and keypoints whose count differs from their category's are errors naming the file and
the fix.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
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
    """One image's boxes: (n, 4) x1 y1 x2 y2 in pixels, class indices 0…K-1, and each box's COCO
    ``segmentation`` (polygons or RLE; ``None`` where the file has none)."""

    path: Path
    boxes: np.ndarray
    labels: np.ndarray
    segmentations: list | None = None
    keypoints: list | None = None  # per box: (K, 3) x, y, visibility, or None (not labelled)

    def keypoint_array(self, count: int) -> np.ndarray:
        """(n, K, 3) keypoints; boxes without any are all invisible (visibility 0: no loss on them)."""
        rows = self.keypoints or [None] * len(self.labels)
        return np.array([np.zeros((count, 3)) if k is None else k for k in rows], np.float32).reshape(-1, count, 3)

    def masks(self, height: int, width: int, source: Path | None = None) -> np.ndarray:
        """(n, H, W) uint8 instance masks decoded from the segmentations (pycocotools)."""
        segmentations = self.segmentations or [None] * len(self.labels)
        if any(s is None for s in segmentations):
            raise DataError(
                f"{source or self.path}: {self.path.name} has boxes without a 'segmentation' (polygons or RLE); "
                "instance masks (maskrcnn) need one per annotation. Add them, or train --arch fasterrcnn."
            )
        masks = [decode_segmentation(s, height, width) for s in segmentations]
        return np.stack(masks) if masks else np.zeros((0, height, width), np.uint8)


def check_segmentation(segmentation: object, height: int, width: int, source: Path, name: str) -> None:
    """A COCO polygon list needs 3+ points per polygon; an RLE must be of its image's size."""
    if isinstance(segmentation, list):
        if not segmentation or any(len(poly) < 6 or len(poly) % 2 for poly in segmentation):
            raise DataError(
                f"{source}: a polygon of {name} has fewer than 3 points or an odd number of coordinates "
                "(COCO polygons are [x1, y1, x2, y2, ...], 3+ points). Fix or remove that annotation."
            )
    elif isinstance(segmentation, dict):
        if list(segmentation.get("size", [])) != [height, width] or "counts" not in segmentation:
            raise DataError(
                f"{source}: an RLE mask of {name} is of size {segmentation.get('size')} (height, width) but the "
                f"image is {height}×{width}, or has no 'counts'. Export the masks at the image's size."
            )
    else:
        raise DataError(f"{source}: the segmentation of {name} is neither polygons (a list) nor an RLE (a dict).")


def decode_segmentation(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    """(H, W) uint8 mask of COCO polygons or an RLE (compressed or not)."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle)


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def check_boxes(item: Annotated, source: Path, num_classes: int) -> None:
    width, height = _size(item.path)
    for segmentation in item.segmentations or []:
        if segmentation is not None:
            check_segmentation(segmentation, height, width, source, item.path.name)
    for points in item.keypoints or []:
        visible = points[points[:, 2] > 0] if points is not None else np.zeros((0, 3))
        if len(visible) and not ((visible[:, 0] >= -1).all() and (visible[:, 0] <= width + 1).all()
                                 and (visible[:, 1] >= -1).all() and (visible[:, 1] <= height + 1).all()):  # fmt: skip
            raise DataError(
                f"{source}: a visible keypoint of {item.path.name} is outside its {width}×{height} image. "
                "Fix it, or give it visibility 0."
            )
    for box, label in zip(item.boxes, item.labels):
        x1, y1, x2, y2 = box.tolist()
        if not (-1 <= x1 < x2 <= width + 1 and -1 <= y1 < y2 <= height + 1):
            raise DataError(
                f"{source}: box {[round(v, 1) for v in (x1, y1, x2, y2)]} (x1 y1 x2 y2) of {item.path.name} is "
                f"outside its {width}×{height} image or has no area. Fix or remove that annotation."
            )
        if not 0 <= label < num_classes:
            raise DataError(f"{source}: {item.path.name} has a box of class {label}, outside 0…{num_classes - 1}.")


def keypoint_names(json_path: Path, coco: dict | None = None) -> list[str]:
    """The keypoint names of a COCO file's categories ([] when none has any); all must share one list.
    ``coco``: the file's content when already parsed."""
    categories = (coco if coco is not None else json.loads(json_path.read_text())).get("categories", [])
    lists = {tuple(c["keypoints"]) for c in categories if c.get("keypoints")}
    if len(lists) > 1:
        raise DataError(
            f"{json_path}: categories list different keypoints ({sorted(lists)}); one keypoint model needs one "
            "list for all categories (give a category's missing keypoints visibility 0)."
        )
    return list(lists.pop()) if lists else []


def _keypoints(ann: dict, count: int, json_path: Path, name: str) -> np.ndarray | None:
    values = ann.get("keypoints")
    if values is None:
        return None
    if len(values) != 3 * count:
        raise DataError(
            f"{json_path}: annotation {ann.get('id')} of {name} has {len(values)} keypoint numbers; its categories "
            f"list {count} keypoints, so {3 * count} are needed (x, y, visibility each; visibility 0 if unknown)."
        )
    return np.array(values, np.float32).reshape(count, 3)


def read_coco(json_path: Path, images_dir: Path) -> tuple[list[str], list[Annotated]]:
    """Classes (by category id order) and boxes of a COCO file; every image of it must exist."""
    coco = json.loads(json_path.read_text())
    points = len(keypoint_names(json_path, coco))
    categories = sorted(coco.get("categories", []), key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(categories)}
    items: dict[int, Annotated] = {}
    for image in coco.get("images", []):
        path = images_dir / image["file_name"]
        if not path.is_file():
            raise DataError(f"{json_path} lists image {image['file_name']!r}, which is not in {images_dir}.")
        items[image["id"]] = Annotated(path, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), [], [])
    for ann in coco.get("annotations", []):
        if ann["image_id"] not in items or ann["category_id"] not in index:
            raise DataError(f"{json_path}: annotation {ann.get('id')} names an unknown image or category.")
        x, y, w, h = ann["bbox"]
        item = items[ann["image_id"]]
        item.boxes = np.vstack([item.boxes, np.array([[x, y, x + w, y + h]], np.float32)])
        item.labels = np.append(item.labels, index[ann["category_id"]])
        item.segmentations.append(ann.get("segmentation") or None)
        item.keypoints.append(_keypoints(ann, points, json_path, item.path.name))
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
    """Annotated images → ((3, S, S) float image in [0, 1], {"boxes" (n, 4) xyxy, "labels" (n,) 1…K}
    and, with ``masks=True``, "masks" (n, S, S) uint8: the instance masks; with ``keypoints=K``,
    "keypoints" (n, K, 3) x, y, visibility — all moved with the image).

    Training images are flipped at random, except with keypoints: a flip would swap left and right
    keypoints (e.g. the two tips of a needle), which a name list alone cannot say how to pair."""

    def __init__(self, items: list[Annotated], size: int, train: bool, max_pixels: int = DEFAULT_MAX_PIXELS,
                 masks: bool = False, keypoints: int = 0) -> None:  # fmt: skip
        self.items, self.max_pixels, self.with_masks, self.keypoints = items, max_pixels, masks, keypoints
        self.size = size
        flips = [T.RandomHorizontalFlip()] if train and not keypoints else []
        self.transform = T.Compose([T.Resize((size, size), antialias=True), *flips, T.SanitizeBoundingBoxes()])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Tensor]]:
        item = self.items[index]
        image = load_image(item.path, self.max_pixels)
        height, width = image.shape[-2:]
        keep = self._kept(item.boxes, height, width)
        boxes = tv_tensors.BoundingBoxes(torch.as_tensor(item.boxes[keep]).reshape(-1, 4), format="XYXY",
                                         canvas_size=(height, width))  # fmt: skip
        target = {"boxes": boxes, "labels": torch.as_tensor(item.labels[keep]) + 1}  # 0 is the background
        if self.with_masks:
            target["masks"] = tv_tensors.Mask(torch.from_numpy(item.masks(height, width)[keep]))
        image, target = self.transform(tv_tensors.Image(image), target)
        target = {k: v.as_subclass(Tensor) for k, v in target.items()}
        if self.keypoints:  # resized by hand: (x, y) scale like the image, visibility stays
            points = torch.from_numpy(item.keypoint_array(self.keypoints)[keep])
            target["keypoints"] = points * torch.tensor([self.size / width, self.size / height, 1.0])
        return image.as_subclass(Tensor), target

    def _kept(self, boxes: np.ndarray, height: int, width: int) -> np.ndarray:
        """Boxes at least a pixel wide and high once resized (what SanitizeBoundingBoxes would keep), so that
        keypoints, which it does not filter, stay paired with their boxes."""
        w = (boxes[:, 2] - boxes[:, 0]) * self.size / width
        h = (boxes[:, 3] - boxes[:, 1]) * self.size / height
        return (w >= 1) & (h >= 1)


def collate(batch: list) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    return [image for image, _ in batch], [target for _, target in batch]


@dataclass
class DetectionData:
    classes: list[str]
    train: BoxFolder
    val: BoxFolder
    test: BoxFolder | None
    size: int
    keypoint_names: list[str] = field(default_factory=list)


def load_detection_data(root: str | Path, size: int = 128, val_fraction: float = 0.2, seed: int = 0,
                        masks: bool = False, keypoints: bool = False) -> DetectionData:  # fmt: skip
    """Train/val(/test) splits of a COCO or YOLO folder; ``masks``: with instance masks, ``keypoints``: with
    keypoints (COCO only)."""
    root = Path(root)
    names = _keypoint_names_of(root) if keypoints else []
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
    folder = lambda items, train: BoxFolder(items, size, train, masks=masks, keypoints=len(names))  # noqa: E731
    return DetectionData(classes, folder(train, True), folder(val, False), folder(test, False) if test else None,
                         size, names)  # fmt: skip


def _keypoint_names_of(root: Path) -> list[str]:
    first = root / "train" / "annotations.json" if (root / "train").is_dir() else root / "annotations.json"
    names = keypoint_names(first) if first.is_file() else []
    if not names:
        raise DataError(f"{root}: no category of {first.name} lists 'keypoints' names; keypoint models need them.")
    return names
