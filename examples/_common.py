"""Shared by the examples: Fashion-MNIST (Debian's dataset-fashion-mnist) as tensors, and
features of the offline ImageNet EfficientNet-Lite0."""

from __future__ import annotations

import time

from transferkit.backbones import create_backbone
from transferkit.data import build_transforms
from transferkit.data.dataset import TensorImageDataset, WithTransform
from transferkit.data.fashion_mnist import CLASSES, balanced_subset, load_fashion_mnist
from transferkit.inference import dataset_features

IMAGE_SIZE = 96


def fashion_subset(split: str, per_class: int, seed: int = 0) -> TensorImageDataset:
    images, labels = load_fashion_mnist(split)
    idx = balanced_subset(labels, per_class, seed)
    return TensorImageDataset(images[idx], labels[idx])


def eval_view(dataset: TensorImageDataset, backbone, image_size: int = IMAGE_SIZE) -> WithTransform:
    dc = backbone.data_config
    return WithTransform(dataset, build_transforms("none", image_size, dc.mean, dc.std, train=False))


def features(dataset: TensorImageDataset, backbone=None, image_size: int = IMAGE_SIZE):
    """(features, labels, seconds) of the pretrained EfficientNet-Lite0 (or ``backbone``)."""
    backbone = backbone or create_backbone("efficientnet_lite0")
    started = time.perf_counter()
    x, y = dataset_features(backbone, eval_view(dataset, backbone, image_size))  # bf16 where native
    return x.float(), y, time.perf_counter() - started


__all__ = ["CLASSES", "IMAGE_SIZE", "eval_view", "fashion_subset", "features"]
