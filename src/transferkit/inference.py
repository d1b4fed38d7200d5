"""Batch prediction over image files, and feature extraction at any layer."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from transferkit.data.images import IMAGE_SUFFIXES, load_image
from transferkit.data.transforms import build_transforms
from transferkit.engine.model import TransferModel, device_of
from transferkit.errors import BadImageError, ConfigError, DataError


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
    dc = model.data_config
    transform = build_transforms("none", dc.input_size, dc.mean, dc.std, train=False, interpolation=dc.interpolation)
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


def _has(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def features_at(model: nn.Module, images: Tensor, layer: str | None) -> Tensor:
    """Pooled output of ``layer`` (a module path such as ``"model.layer3"``; ``None``: the backbone's features).

    Spatial maps (N, C, H, W) are averaged over H, W; token sequences (N, T, C) over T.
    """
    backbone = model.backbone if isinstance(model, TransferModel) else model
    if layer is None:
        return backbone.forward_features(images)
    try:
        inner = getattr(backbone, "model", backbone)  # "layer3" means the network's layer3
        target = inner.get_submodule(layer) if _has(inner, layer) else backbone.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in backbone.named_modules() if n and n.count(".") <= 2][:40]
        raise ConfigError(
            f"No layer {layer!r} in {getattr(backbone, 'name', 'the backbone')}. Some layers: {names}."
        ) from None
    captured: list[Tensor] = []
    handle = target.register_forward_hook(
        lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out)
    )
    try:
        backbone.forward_features(images)
    finally:
        handle.remove()
    out = captured[0]
    if out.ndim == 4:
        return out.mean(dim=(2, 3))
    if out.ndim == 3:
        return out.mean(dim=1)
    return out.flatten(1)


def dataset_features(
    backbone: nn.Module,
    dataset: torch.utils.data.Dataset,
    batch_size: int = 64,
    layer: str | None = None,
    num_workers: int = 0,
    precision: str = "auto",
) -> tuple[Tensor, Tensor]:
    """(features (N, D) float32, labels (N,)) of a labelled dataset, in order, on one process.

    Under ``inference_mode`` with ``channels_last`` on the backbone's device. ``precision="auto"``
    uses bf16 autocast where the hardware runs it natively (about 2× faster on such CPUs; see
    :func:`transferkit.engine.config.frozen_autocast_dtype`), ``"32-true"`` keeps fp32. For
    training-time caching across processes see :mod:`transferkit.engine.cache`.
    """
    from torch.utils.data import DataLoader

    from transferkit.engine.config import autocast_for, frozen_autocast_dtype

    was_training = backbone.training
    backbone.eval()
    device = device_of(backbone)
    dtype = frozen_autocast_dtype(precision, device)
    chunks, labels = [], []
    try:
        with torch.inference_mode(), autocast_for(device, dtype):
            for images, targets in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
                images = images.to(device).contiguous(memory_format=torch.channels_last)
                chunks.append(features_at(backbone, images, layer).float().cpu())
                labels.append(torch.as_tensor(targets))
    finally:
        backbone.train(was_training)
    return torch.cat(chunks), torch.cat(labels)
