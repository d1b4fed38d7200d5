"""Semantic segmentation from a pretrained backbone: segmentation-models-pytorch decoders (U-Net, FPN,
DeepLabV3+) on a timm encoder carrying transferkit's offline weights and layer groups."""

from transferkit.segmentation.data import MaskFolder, SegmentationData, find_pairs, load_segmentation_data
from transferkit.segmentation.model import ARCHITECTURES, SegmentationModel, build_segmenter, load_segmenter
from transferkit.segmentation.train import SegmentationConfig, SegmentationResult, evaluate_segmenter, fit_segmenter

__all__ = [
    "ARCHITECTURES",
    "MaskFolder",
    "SegmentationConfig",
    "SegmentationData",
    "SegmentationModel",
    "SegmentationResult",
    "build_segmenter",
    "evaluate_segmenter",
    "find_pairs",
    "fit_segmenter",
    "load_segmentation_data",
    "load_segmenter",
]
