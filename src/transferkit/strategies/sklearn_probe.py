"""Frozen features → a scikit-learn classifier, turned into a head (saved as tensors, never pickled).

The classic strong baselines for few images: no gradient steps at all; ``C`` is chosen by
cross-validation on the training features only.

- ``logreg``: ``StandardScaler → LogisticRegression``, folded into one ``Linear`` layer.
- ``svm``: RBF ``SVC`` (optionally standardised), probabilities calibrated with
  ``CalibratedClassifierCV(method="temperature", ensemble=False)``, reproduced by
  :class:`~transferkit.heads.svm.KernelSVMHead`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from transferkit.errors import ConfigError, DataError
from transferkit.heads import create_head
from transferkit.heads.svm import KernelSVMHead

Classifier = Literal["logreg", "svm"]
# The classical baselines: strategy → the parameter-free extractor (backbones/classical.py) feeding an RBF SVM.
CLASSICAL_BASELINES = {"sklearn-pixels-svm": "pixels", "sklearn-hog-svm": "hog"}
LOGREG_CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
SVM_CS = (0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass
class SklearnHead:
    """A fitted head and how it was chosen (``cv_accuracy`` is NaN when nothing could be cross-validated)."""

    name: str
    options: dict[str, Any]
    module: nn.Module
    C: float
    cv_accuracy: float


def _search_C(estimator, grid: dict, x: np.ndarray, y: np.ndarray, seed: int) -> tuple[Any, float]:
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    folds = min(3, int(np.bincount(y).min()))
    if folds < 2:
        return estimator.fit(x, y), float("nan")
    search = GridSearchCV(estimator, grid, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    search.fit(x, y)
    return search.best_estimator_, float(search.best_score_)


def _logreg(x: np.ndarray, y: np.ndarray, num_classes: int, seed: int) -> SklearnHead:
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0) + 1e-6
    model, score = _search_C(LogisticRegression(max_iter=3000), {"C": LOGREG_CS}, (x - mean) / std, y, seed)
    coef = np.zeros((num_classes, x.shape[1]))
    intercept = np.zeros(num_classes)
    if len(model.classes_) == 2:  # binary: P(class 1) = sigmoid(z) = softmax([0, z])[1]
        coef[model.classes_[1]], intercept[model.classes_[1]] = model.coef_[0], model.intercept_[0]
    else:
        coef[model.classes_], intercept[model.classes_] = model.coef_, model.intercept_
    head = create_head("linear", x.shape[1], num_classes)
    with torch.no_grad():
        head.fc.weight.copy_(torch.as_tensor(coef / std, dtype=torch.float32))
        head.fc.bias.copy_(torch.as_tensor(intercept - (coef / std) @ mean, dtype=torch.float32))
    return SklearnHead("linear", {}, head, float(model.C), score)


def _svm(x: np.ndarray, y: np.ndarray, num_classes: int, standardize: bool, seed: int) -> SklearnHead:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    counts = np.bincount(y, minlength=num_classes)
    if counts.min() < 2:
        raise DataError(
            f"An SVM's probabilities are calibrated by cross-validation, which needs at least 2 images per class; "
            f"the smallest class has {int(counts.min())}. Use sklearn-logreg or feature-extraction instead."
        )
    mean, std = (x.mean(0), x.std(0) + 1e-6) if standardize else (np.zeros(x.shape[1]), np.ones(x.shape[1]))
    z = (x - mean) / std
    model, score = _search_C(SVC(kernel="rbf"), {"C": SVM_CS}, z, y, seed)
    calibrated = CalibratedClassifierCV(
        SVC(kernel="rbf", C=model.C), method="temperature", ensemble=False, cv=min(3, int(counts.min()))
    ).fit(z, y)
    head = KernelSVMHead.from_sklearn(calibrated, torch.as_tensor(mean), torch.as_tensor(std))
    return SklearnHead("svm", {"n_support": head.n_support}, head, float(model.C), score)


def svm_cv_accuracy(features: np.ndarray, labels: np.ndarray, standardize: bool = False, seed: int = 0) -> float:
    """Best 3-fold cross-validated accuracy of an RBF SVM over ``SVM_CS`` (NaN if a class has < 2 images)."""
    from sklearn.svm import SVC

    x, y = np.asarray(features, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if standardize:
        x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return _search_C(SVC(kernel="rbf"), {"C": SVM_CS}, x, y, seed)[1]


def fit_sklearn_head(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    classifier: Classifier = "logreg",
    standardize: bool = True,
    seed: int = 0,
) -> SklearnHead:
    """Fit ``classifier`` on frozen features with ``C`` by 3-fold CV; return it as a head.

    ``standardize`` applies to the SVM (the logistic regression always standardises): off for
    features that already share one scale (raw pixels, HOG blocks).
    """
    x, y = np.asarray(features, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    missing = sorted(set(range(num_classes)) - set(np.unique(y).tolist()))
    if missing:
        raise DataError(f"Classes {missing} have no training images; a classifier cannot learn them.")
    if classifier == "logreg":
        return _logreg(x, y, num_classes, seed)
    if classifier == "svm":
        return _svm(x, y, num_classes, standardize, seed)
    raise ConfigError(f"classifier must be 'logreg' or 'svm', got {classifier!r}.")
