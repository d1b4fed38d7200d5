"""Data: finding labelled images, decoding them robustly, transforms, sampling."""

from transferkit.data.dataset import ImageFileDataset, TensorImageDataset, WithTransform, verify_images
from transferkit.data.folders import Splits, find_splits
from transferkit.data.images import load_image
from transferkit.data.sampler import EpochSampler
from transferkit.data.stats import compute_mean_std
from transferkit.data.transforms import PRESETS, build_transforms, eval_transform

__all__ = [
    "EpochSampler",
    "ImageFileDataset",
    "PRESETS",
    "Splits",
    "TensorImageDataset",
    "WithTransform",
    "build_transforms",
    "eval_transform",
    "compute_mean_std",
    "find_splits",
    "load_image",
    "verify_images",
]
