"""Defect (anomaly) detection from pretrained features, trained on normal images only: PatchCore and
PaDiM over a backbone's mid-level stages, image and pixel AUROC, MVTec AD's folder layout, and
synthetic texture defects for demos and benchmarks."""

from transferkit.anomaly.base import ANOMALY_METHODS, AnomalyMethod
from transferkit.anomaly.data import AnomalyData, AnomalyImages, read_anomaly_folder
from transferkit.anomaly.metrics import aupro, image_auroc, pixel_auroc
from transferkit.anomaly.model import AnomalyModel, build_anomaly_model, load_anomaly_model
from transferkit.anomaly.padim import PaDiM
from transferkit.anomaly.patchcore import PatchCore

__all__ = [
    "aupro",
    "ANOMALY_METHODS",
    "AnomalyData",
    "AnomalyImages",
    "AnomalyMethod",
    "AnomalyModel",
    "PaDiM",
    "PatchCore",
    "build_anomaly_model",
    "image_auroc",
    "load_anomaly_model",
    "pixel_auroc",
    "read_anomaly_folder",
]
