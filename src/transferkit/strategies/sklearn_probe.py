"""Frozen features → a scikit-learn classifier (logistic regression or SVM).

The classic strong baseline for few images: no gradient steps at all; features are
standardised, and ``C`` is chosen by cross-validation when there are enough examples.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from transferkit.errors import ConfigError

Classifier = Literal["logreg", "svm"]


def fit_sklearn_probe(
    features: np.ndarray, labels: np.ndarray, classifier: Classifier = "logreg", seed: int = 0
) -> Pipeline:
    """Fit ``StandardScaler → LogisticRegression|SVC`` on features; ``C`` by 3-fold CV when possible."""
    if classifier == "logreg":
        model = LogisticRegression(max_iter=2000, random_state=seed)
    elif classifier == "svm":
        model = SVC(kernel="rbf", probability=True, random_state=seed)
    else:
        raise ConfigError(f"classifier must be 'logreg' or 'svm', got {classifier!r}.")
    pipeline = make_pipeline(StandardScaler(), model)
    smallest = np.bincount(labels).min() if len(labels) else 0
    if smallest >= 3:
        key = f"{type(model).__name__.lower()}__C"
        search = GridSearchCV(
            pipeline, {key: [0.01, 0.1, 1.0, 10.0]}, cv=StratifiedKFold(3, shuffle=True, random_state=seed)
        )
        return search.fit(features, labels).best_estimator_
    return pipeline.fit(features, labels)
