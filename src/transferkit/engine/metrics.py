"""Classification metrics from predicted probabilities (scikit-learn does the counting)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


@dataclass(frozen=True)
class Metrics:
    """Accuracy, top-k accuracy, macro precision/recall/F1, per-class F1 and the confusion matrix."""

    accuracy: float
    top_k: int
    top_k_accuracy: float
    precision: float
    recall: float
    f1: float
    per_class_f1: list[float]
    confusion: list[list[int]]

    def summary(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, float)}


def classification_metrics(labels: np.ndarray, probs: np.ndarray, top_k: int = 5) -> Metrics:
    """Metrics of ``probs`` (N, C) against integer ``labels`` (N,)."""
    num_classes = probs.shape[1]
    classes = np.arange(num_classes)
    preds = probs.argmax(1)
    k = min(top_k, num_classes)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, preds, labels=classes, average="macro", zero_division=0
    )
    per_class = precision_recall_fscore_support(labels, preds, labels=classes, average=None, zero_division=0)[2]
    top = np.argsort(-probs, axis=1)[:, :k]
    topk = float((top == labels[:, None]).any(axis=1).mean())
    return Metrics(
        accuracy=float((preds == labels).mean()),
        top_k=k,
        top_k_accuracy=float(topk),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        per_class_f1=[float(v) for v in per_class],
        confusion=confusion_matrix(labels, preds, labels=classes).tolist(),
    )
