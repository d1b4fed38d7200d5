"""Batch prediction over image files. Feature extraction (``dataset_features``, ``features_at``) lives in
:mod:`transferkit.engine.cache` and is re-exported here."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from transferkit.data.images import IMAGE_SUFFIXES, load_image
from transferkit.data.transforms import eval_transform
from transferkit.engine.cache import dataset_features, features_at
from transferkit.engine.model import TransferModel, device_of
from transferkit.errors import BadImageError, DataError

__all__ = ["Prediction", "dataset_features", "features_at", "list_images", "predict", "write_predictions_csv"]


def list_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named directly, or found recursively in folders."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            files.append(item)
        else:
            raise DataError(f"{str(item)!r} is neither an image file nor a folder.")
    if not files:
        raise DataError(f"No images found in {[str(i) for i in inputs]}.")
    return files


@dataclass(frozen=True)
class Prediction:
    path: Path
    classes: list[str]
    probabilities: list[float]
    error: str = ""


def predict(model: TransferModel, files: Sequence[Path], top_k: int = 3, batch_size: int = 32) -> list[Prediction]:
    """Top-k classes and probabilities per file; unreadable files get an ``error`` instead of failing the batch."""
    transform = eval_transform(model.data_config)
    model.eval()
    k = min(top_k, len(model.classes))
    device = device_of(model)
    results: list[Prediction] = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        images, kept = [], []
        for path in chunk:
            try:
                images.append(transform(load_image(path)))
                kept.append(path)
            except BadImageError as exc:
                results.append(Prediction(path, [], [], exc.reason))
        if not images:
            continue
        with torch.inference_mode():
            probs = model(torch.stack(images).to(device)).float().softmax(1).cpu()
        values, indices = probs.topk(k, dim=1)
        for path, vals, idx in zip(kept, values.tolist(), indices.tolist()):
            results.append(Prediction(path, [model.classes[i] for i in idx], vals))
    order = {p: i for i, p in enumerate(files)}
    return sorted(results, key=lambda r: order[r.path])


def write_predictions_csv(predictions: Sequence[Prediction], path: str | Path, top_k: int) -> None:
    """One row per prediction, written to a temporary file and renamed: ``path`` is never half-written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        _write_rows(predictions, tmp, top_k)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_rows(predictions: Sequence[Prediction], path: Path, top_k: int) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["path", "prediction", "probability"]
        for i in range(2, top_k + 1):
            header += [f"top{i}", f"top{i}_probability"]
        writer.writerow([*header, "error"])
        for p in predictions:
            row: list[object] = [str(p.path)]
            for i in range(top_k):
                row += [p.classes[i], f"{p.probabilities[i]:.6f}"] if i < len(p.classes) else ["", ""]
            writer.writerow([*row, p.error])
