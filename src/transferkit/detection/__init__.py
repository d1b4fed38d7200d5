"""Object detection and instance segmentation from a pretrained backbone: torchvision's Faster R-CNN /
RetinaNet / FCOS / Mask R-CNN over an FPN on the backbone's stages (its offline weights and layer groups);
COCO JSON (boxes, polygons, RLE) and YOLO txt data; COCO mAP of boxes and masks; crystal micrographs."""

from transferkit.detection.data import BoxFolder, DetectionData, load_detection_data, read_coco, read_yolo
from transferkit.detection.model import ARCHITECTURES, DetectionModel, build_detector, load_detector
from transferkit.detection.train import DetectionResult, evaluate_detector, fit_detector

__all__ = [
    "ARCHITECTURES",
    "BoxFolder",
    "DetectionData",
    "DetectionModel",
    "DetectionResult",
    "build_detector",
    "evaluate_detector",
    "fit_detector",
    "load_detection_data",
    "load_detector",
    "read_coco",
    "read_yolo",
]
