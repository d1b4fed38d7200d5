"""Transfer to dense tasks: a pretrained encoder against the same network from random init.

Detection: the same composites with each item's box (COCO annotations; 4 classes: top, trouser,
footwear, bag). Faster R-CNN on an FPN over EfficientNet-Lite0's stages, pretrained vs random init,
best epoch by validation mAP@.5, test mAP@.5 and mAP@[.5:.95] once. Classical baseline: Otsu
threshold → connected components → boxes, each classified by HOG + RBF-SVM trained on the training
boxes (its probability is the score).

Segmentation: Fashion-MNIST items composited onto scikit-image's texture photos (exact masks,
5 classes; see ``transferkit.segmentation.composites``), 100 training and 50 validation images
per seed (items from Fashion-MNIST's training split), the same 200 test images for every seed
(items from its test split), 128 px. U-Net on EfficientNet-Lite0 (ImageNet weights from the
offline package) vs the same U-Net from random init, the same epochs and learning rate; the
best epoch by validation mIoU is scored once on the test images. Beside them the classical
baseline users try first: scikit-image's trainable segmentation (multi-scale intensity, edge
and texture features per pixel → random forest), on the same images.

Instance segmentation: synthetic crystal micrographs (``transferkit.detection.crystals``: 16-bit,
three habits, blur and shot noise, exact polygons in COCO), 100 training and 50 validation images
per seed, the same 200 test images for every seed, 128 px. Mask R-CNN on the same pyramid,
pretrained vs random init, best epoch by validation mask mAP@.5, test mask mAP@.5 once. Classical
baseline: Otsu threshold → connected components as the masks, classified by HOG + RBF-SVM.

Writes ``benchmarks/results/dense.json``: a list of
``{"task", "init", "seed", "metric", "value", "wall_seconds"}`` (rows of tasks not run are kept).

Usage: python benchmarks/bench_dense.py [--tasks segment,detect,instance] [--seeds 0,1,2] [--epochs 30]
       [--detect-epochs 25] [--instance-epochs 15]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = 128


def make_data(root: Path, seed: int) -> Path:
    from transferkit.data.fashion_mnist import load_fashion_mnist
    from transferkit.segmentation.composites import CLASSES, write_composites

    train_x, train_y = (t.numpy() for t in load_fashion_mnist("train"))
    test_x, test_y = (t.numpy() for t in load_fashion_mnist("test"))
    write_composites(root / "train", 100, train_x[:30000], train_y[:30000], SIZE, seed=100 + seed)
    write_composites(root / "val", 50, train_x[30000:], train_y[30000:], SIZE, seed=200 + seed)
    write_composites(root / "test", 200, test_x, test_y, SIZE, seed=0)  # the same test images for every seed
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def deep(root: Path, init: str, seed: int, epochs: int) -> dict:
    from transferkit.backbones import create_backbone
    from transferkit.engine.config import TrainConfig
    from transferkit.segmentation import build_segmenter, evaluate_segmenter, fit_segmenter, load_segmentation_data

    start = time.perf_counter()
    import torch

    torch.manual_seed(seed)
    source = create_backbone("efficientnet_lite0", weights="imagenet" if init == "pretrained" else None)
    data = load_segmentation_data(root, source.data_config, SIZE)
    model = build_segmenter(source, data.classes, "unet", data_config=data.data_config)
    config = TrainConfig(epochs=epochs, batch_size=8, lr=1e-3, seed=seed, progress=False)
    result = fit_segmenter(model, data, "fine-tune", config, log=lambda *_: None)
    test = evaluate_segmenter(result.model, data.test)
    return {"task": "segment", "init": init, "seed": seed, "metric": "test_miou", "value": round(test["miou"], 4),
            "val_miou": result.metrics["val_miou"], "best_epoch": result.best_epoch + 1,
            "wall_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def deep_detect(root: Path, init: str, seed: int, epochs: int, arch: str = "fasterrcnn") -> dict:
    """Faster R-CNN (task detect: box mAP@.5) or Mask R-CNN (task instance: mask mAP@.5) on ``root``."""
    import torch

    from transferkit.backbones import create_backbone
    from transferkit.detection import build_detector, evaluate_detector, fit_detector, load_detection_data
    from transferkit.engine.config import TrainConfig

    start = time.perf_counter()
    torch.manual_seed(seed)
    masks = arch == "maskrcnn"
    source = create_backbone("efficientnet_lite0", weights="imagenet" if init == "pretrained" else None)
    data = load_detection_data(root, SIZE, masks=masks)
    model = build_detector(source, data.classes, arch, image_size=SIZE)
    config = TrainConfig(epochs=epochs, batch_size=8, lr=1e-3, seed=seed, progress=False)
    result = fit_detector(model, data, "fine-tune", config, log=lambda *_: None)
    test = evaluate_detector(result.model, data.test)
    row = {"task": "instance" if masks else "detect", "init": init, "seed": seed}
    if masks:
        row |= {"metric": "test_mask_map50", "value": round(test["mask_map_50"], 4),
                "mask_map": round(test["mask_map"], 4), "box_map50": round(test["map_50"], 4),
                "val_mask_map50": result.metrics["val_mask_map50"]}  # fmt: skip
    else:
        row |= {"metric": "test_map50", "value": round(test["map_50"], 4), "map": round(test["map"], 4),
                "val_map50": result.metrics["val_map50"]}  # fmt: skip
    return row | {"best_epoch": result.best_epoch + 1, "wall_seconds": round(time.perf_counter() - start, 1)}


def _crops_features(image: np.ndarray, boxes: list) -> np.ndarray:
    from PIL import Image
    from skimage.feature import hog

    rows = []
    for x1, y1, x2, y2 in boxes:
        crop = Image.fromarray((image[int(y1) : int(y2), int(x1) : int(x2)] * 255).astype(np.uint8)).resize((32, 32))
        rows.append(hog(np.asarray(crop, np.float32) / 255, pixels_per_cell=(8, 8), cells_per_block=(2, 2)))
    return np.array(rows)


def _gray(path: Path) -> np.ndarray:
    """(H, W) float in [0, 1]: Pillow's luma for 8-bit files, transferkit's reader for 16-bit TIFFs."""
    from PIL import Image

    from transferkit.data.images import load_image

    if path.suffix.lower() in (".tif", ".tiff"):
        return load_image(path)[0].numpy()
    return np.asarray(Image.open(path).convert("L"), np.float32) / 255


def classical_detect(root: Path, seed: int, masks: bool = False) -> dict:
    """Otsu threshold → connected components → boxes (and, with ``masks``, the components as instance
    masks), classified by HOG + RBF-SVM on the training boxes."""
    import torch
    from skimage.filters import threshold_otsu
    from skimage.measure import label, regionprops
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    from transferkit.detection import read_coco
    from transferkit.detection.train import detection_metrics

    start = time.perf_counter()
    _, train = read_coco(root / "train" / "annotations.json", root / "train" / "images")
    xs, ys = [], []
    for item in train:
        image = _gray(item.path)
        xs.append(_crops_features(image, item.boxes.tolist()))
        ys += item.labels.tolist()
    svm = CalibratedClassifierCV(SVC(random_state=seed), ensemble=False).fit(np.concatenate(xs), ys)
    _, test = read_coco(root / "test" / "annotations.json", root / "test" / "images")
    predictions, targets = [], []
    for item in test:
        image = _gray(item.path)
        components = label(image > threshold_otsu(image))
        regions = [r for r in regionprops(components) if r.area >= 30]
        boxes = [[r.bbox[1], r.bbox[0], r.bbox[3], r.bbox[2]] for r in regions]
        probs = svm.predict_proba(_crops_features(image, boxes)) if boxes else np.zeros((0, len(svm.classes_)))
        labels = svm.classes_[probs.argmax(1)] + 1 if len(probs) else np.zeros(0, np.int64)
        predictions.append(
            {
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "scores": torch.as_tensor(probs.max(1) if len(probs) else np.zeros(0), dtype=torch.float32),
                "labels": torch.as_tensor(labels, dtype=torch.long),
            }
        )
        targets.append({"boxes": torch.as_tensor(item.boxes), "labels": torch.as_tensor(item.labels) + 1})
        if masks:
            found = [components == r.label for r in regions]
            predictions[-1]["masks"] = torch.as_tensor(np.array(found, bool).reshape(-1, *image.shape))
            targets[-1]["masks"] = torch.as_tensor(item.masks(*image.shape))
    metrics = detection_metrics(predictions, targets)
    seconds = round(time.perf_counter() - start, 1)
    row = {"task": "detect", "init": "classical (Otsu components + HOG/SVM)", "seed": seed, "metric": "test_map50",
           "value": round(metrics["map_50"], 4), "map": round(metrics["map"], 4), "wall_seconds": seconds}  # fmt: skip
    if masks:
        row |= {"task": "instance", "metric": "test_mask_map50", "value": round(metrics["mask_map_50"], 4),
                "mask_map": round(metrics["mask_map"], 4), "box_map50": round(metrics["map_50"], 4)}  # fmt: skip
    return row


def classical(root: Path, seed: int, pixels_per_image: int = 2000) -> dict:
    """scikit-image's trainable segmentation: per-pixel multi-scale features → random forest."""
    from functools import partial

    from PIL import Image
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    from transferkit.segmentation.train import segmentation_metrics

    start = time.perf_counter()
    features = partial(multiscale_basic_features, intensity=True, edges=True, texture=True, sigma_min=1, sigma_max=8)
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for image_path in sorted((root / "train" / "images").iterdir()):
        image = np.asarray(Image.open(image_path).convert("L"), np.float32) / 255
        mask = np.asarray(Image.open(root / "train" / "masks" / image_path.name))
        f = features(image)
        pick = rng.choice(image.size, pixels_per_image, replace=False)
        xs.append(f.reshape(-1, f.shape[-1])[pick])
        ys.append(mask.ravel()[pick])
    forest = RandomForestClassifier(100, n_jobs=-1, random_state=seed, max_samples=0.5)
    forest.fit(np.concatenate(xs), np.concatenate(ys))
    preds, masks = [], []
    for image_path in sorted((root / "test" / "images").iterdir()):
        image = np.asarray(Image.open(image_path).convert("L"), np.float32) / 255
        f = features(image)
        preds.append(forest.predict(f.reshape(-1, f.shape[-1])).reshape(image.shape))
        masks.append(np.asarray(Image.open(root / "test" / "masks" / image_path.name)))
    import torch

    metrics = segmentation_metrics(torch.as_tensor(np.stack(preds)).long(), torch.as_tensor(np.stack(masks)).long(), 5)
    seconds = round(time.perf_counter() - start, 1)
    return {"task": "segment", "init": "classical (skimage features + random forest)", "seed": seed,
            "metric": "test_miou", "value": round(metrics["miou"], 4), "wall_seconds": seconds}  # fmt: skip


def crystals(root: Path, seed: int) -> Path:
    """100 training and 50 validation micrographs per seed, the same 200 test ones for every seed."""
    from transferkit.detection.crystals import write_crystals

    write_crystals(root / "crystals", {"train": 100, "val": 50}, SIZE, seed=seed)
    return write_crystals(root / "crystals", {"test": 200}, SIZE, seed=999)


RUNS = {
    "segment": lambda root, seed, args: (
        [classical(root, seed)] + [deep(root, init, seed, args.epochs) for init in ("pretrained", "scratch")]
    ),
    "detect": lambda root, seed, args: (
        [classical_detect(root, seed)]
        + [deep_detect(root, init, seed, args.detect_epochs) for init in ("pretrained", "scratch")]
    ),
    "instance": lambda root, seed, args: (
        [classical_detect(crystals(root, seed), seed, masks=True)]
        + [deep_detect(root / "crystals", i, seed, args.instance_epochs, "maskrcnn") for i in ("pretrained", "scratch")]
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="segment,detect,instance")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--detect-epochs", type=int, default=25)
    parser.add_argument("--instance-epochs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dense.json")
    args = parser.parse_args()
    from transferkit.engine.threads import configure_threads

    configure_threads(None)
    tasks = args.tasks.split(",")
    kept = json.loads(args.out.read_text()) if args.out.is_file() else []
    rows = [r for r in kept if r["task"] not in tasks]
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            root = make_data(Path(tmp), seed)
            for task in tasks:
                for row in RUNS[task](root, seed, args):
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")  # after every seed: a partial run keeps its rows
    for task in tasks:
        for init in dict.fromkeys(r["init"] for r in rows if r["task"] == task):
            values = [r["value"] for r in rows if r["task"] == task and r["init"] == init]
            print(f"{task} {init:45s} {np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.4f}")


if __name__ == "__main__":
    main()
