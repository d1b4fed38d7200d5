"""A scikit-learn strategy's run folder holds a model that predicts what scikit-learn itself predicts."""

import json

import numpy as np
import pytest
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from transferkit.api import train_classifier
from transferkit.engine.model import load_model

from ..conftest import make_tiny_backbone
from ..engine.helpers import config, quiet, tiny_data


def _features(backbone, dataset) -> tuple[np.ndarray, np.ndarray]:
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = np.array([int(dataset[i][1]) for i in range(len(dataset))])
    with torch.no_grad():
        return backbone.eval()(images).double().numpy(), labels


def _reference(strategy: str, C: float, x: np.ndarray, y: np.ndarray):
    """scikit-learn's own model at the C the run chose, fitted on the same frozen features."""
    scaler = StandardScaler().fit(x)
    if strategy == "sklearn-logreg":
        model = LogisticRegression(C=C, max_iter=3000)
    else:
        model = CalibratedClassifierCV(SVC(kernel="rbf", C=C), method="temperature", ensemble=False, cv=3)
    return scaler, model.fit(scaler.transform(x), y)


@pytest.mark.parametrize("strategy", ["sklearn-logreg", "sklearn-svm"])
def test_the_saved_model_predicts_the_labels_of_the_in_memory_sklearn_model(strategy, tmp_path):
    torch.manual_seed(0)
    backbone, data = tiny_data(n_per_class=12)
    result = train_classifier(data, backbone, strategy, config(), out=tmp_path / "run", log=quiet)
    for name in ("best.pt", "config.yaml", "best_metrics.json", "metrics.csv", "confusion.png", "report.html"):
        assert (tmp_path / "run" / name).is_file(), name
    saved = json.loads((tmp_path / "run" / "best_metrics.json").read_text())
    assert saved["accuracy"] == pytest.approx(result.metrics.accuracy)

    loaded = load_model(tmp_path / "run" / "best.pt", backbone=make_tiny_backbone())  # weights from the file
    original = backbone.state_dict()
    assert all(torch.equal(v, original[k]) for k, v in loaded.backbone.state_dict().items())  # frozen, saved
    x_train, y_train = _features(loaded.backbone, data.train_eval)
    x_val, _ = _features(loaded.backbone, data.val)
    scaler, reference = _reference(strategy, result.extra["C"], x_train, y_train)
    expected = reference.predict_proba(scaler.transform(x_val))
    images = torch.stack([data.val[i][0] for i in range(len(data.val))])
    with torch.no_grad():
        got = loaded.eval()(images).double().softmax(1).numpy()
    assert (got.argmax(1) == expected.argmax(1)).all()
    np.testing.assert_allclose(got, expected, atol=1e-3)  # the head reproduces the probabilities too
