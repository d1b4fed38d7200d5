"""Segmentation data made from what ships offline: Fashion-MNIST items on real texture photos.

Each image is a random crop of one of scikit-image's texture photos (brick, grass, gravel) with
1–3 Fashion-MNIST items pasted at random positions and scales; the mask is exact (the pixels
each item covers, later items on top). Five classes: background, top (T-shirt, pullover, dress,
coat, shirt), trouser, footwear (sandal, sneaker, ankle boot), bag.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["background", "top", "trouser", "footwear", "bag"]
ITEM_CLASS = {0: 1, 2: 1, 3: 1, 4: 1, 6: 1, 1: 2, 5: 3, 7: 3, 9: 3, 8: 4}  # Fashion-MNIST label → class


def _textures() -> list[np.ndarray]:
    from skimage import data

    return [np.asarray(getattr(data, name)(), dtype=np.float32) / 255.0 for name in ("brick", "grass", "gravel")]


def composite(
    rng: np.random.Generator, textures: list[np.ndarray], items: np.ndarray, labels: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int, int, int]]]:
    """One (size, size) uint8 image, its class-id mask, and each item's box (x1, y1, x2, y2, class id)."""
    texture = textures[rng.integers(len(textures))]
    crop = int(rng.integers(size, min(texture.shape) + 1))
    y, x = rng.integers(0, texture.shape[0] - crop + 1), rng.integers(0, texture.shape[1] - crop + 1)
    patch = Image.fromarray((texture[y : y + crop, x : x + crop] * 255).astype(np.uint8)).resize((size, size))
    image = np.asarray(patch, dtype=np.float32) / 255.0 * 0.8  # darker than the items on average
    mask = np.zeros((size, size), dtype=np.uint8)
    boxes = []
    for _ in range(int(rng.integers(1, 4))):
        index = int(rng.integers(len(items)))
        scale = int(rng.integers(size // 4, size // 2 + 1))
        item = np.asarray(Image.fromarray(items[index]).resize((scale, scale), Image.BILINEAR), np.float32) / 255
        top, left = rng.integers(0, size - scale + 1), rng.integers(0, size - scale + 1)
        covered = item > 0.12
        region = image[top : top + scale, left : left + scale]
        region[covered] = 0.15 + 0.85 * item[covered]
        mask[top : top + scale, left : left + scale][covered] = ITEM_CLASS[int(labels[index])]
        ys, xs = np.nonzero(covered)
        if len(xs):  # the item's whole extent (later items may cover part of it)
            box = (left + xs.min(), top + ys.min(), left + xs.max() + 1, top + ys.max() + 1)
            boxes.append((*(int(v) for v in box), ITEM_CLASS[int(labels[index])]))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), mask, boxes


def write_composites(
    folder: str | Path, count: int, items: np.ndarray, labels: np.ndarray, size: int = 128, seed: int = 0
) -> Path:
    """``folder/images/NNNN.png``, ``folder/masks/NNNN.png`` (class ids) and ``folder/annotations.json``
    (COCO boxes of the items, categories = the classes after background) for ``count`` composites."""
    import json

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    textures = _textures()
    categories = [{"id": i, "name": name} for i, name in enumerate(CLASSES) if i > 0]  # no background box
    coco: dict = {"images": [], "annotations": [], "categories": categories}
    for i in range(count):
        image, mask, boxes = composite(rng, textures, items, labels, size)
        Image.fromarray(image).save(folder / "images" / f"{i:04d}.png")
        Image.fromarray(mask).save(folder / "masks" / f"{i:04d}.png")
        coco["images"].append({"id": i, "file_name": f"{i:04d}.png", "width": size, "height": size})
        for x1, y1, x2, y2, c in boxes:
            bbox = [x1, y1, x2 - x1, y2 - y1]
            coco["annotations"].append({"id": len(coco["annotations"]), "image_id": i, "category_id": c, "bbox": bbox})
    (folder / "annotations.json").write_text(json.dumps(coco))
    return folder


def write_dataset(root: str | Path, train: int = 100, val: int = 50, test: int = 200, size: int = 128, seed: int = 0):
    """``root/{train,val,test}`` composites (train/val items from Fashion-MNIST's training split, test items
    from its test split) and ``root/classes.txt``."""
    from transferkit.data.fashion_mnist import load_fashion_mnist

    root = Path(root)
    train_x, train_y = (t.numpy() for t in load_fashion_mnist("train"))
    test_x, test_y = (t.numpy() for t in load_fashion_mnist("test"))
    write_composites(root / "train", train, train_x[:30000], train_y[:30000], size, seed)
    write_composites(root / "val", val, train_x[30000:], train_y[30000:], size, seed + 1)
    write_composites(root / "test", test, test_x, test_y, size, seed + 2)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root
