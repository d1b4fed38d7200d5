"""A head on cached features is trained to convergence by default, not for a fixed few epochs."""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegressionCV
from sklearn.preprocessing import StandardScaler

from transferkit.api import make_data, train_classifier
from transferkit.data import TensorImageDataset
from transferkit.engine.config import TrainConfig

from ..conftest import make_tiny_backbone
from .helpers import quiet


def _many_classes(n_per_class: int, seed: int, classes: int = 12):
    """12 classes told apart by a faint per-class colour pattern: easy for a converged linear probe,
    slow for a few epochs of SGD on a random head."""
    rng = np.random.default_rng(seed)
    patterns = np.random.default_rng(99).uniform(-1, 1, size=(classes, 3, 1, 1))
    labels = np.repeat(np.arange(classes), n_per_class)
    images = 0.5 + 0.08 * patterns[labels] + rng.normal(0, 0.05, size=(len(labels), 3, 16, 16))
    return TensorImageDataset(torch.tensor(images.clip(0, 1), dtype=torch.float32), labels.tolist())


def _fit(solver: str):
    torch.manual_seed(0)
    backbone = make_tiny_backbone()
    data = make_data(_many_classes(6, 0), _many_classes(6, 1), [f"c{i}" for i in range(12)], backbone.data_config)
    # what `fit --strategy feature-extraction` did by default before: 10 epochs, batch 32, AdamW lr 1e-3
    config = TrainConfig(epochs=10, progress=False, precision="32-true", accelerator="cpu", head_solver=solver)
    return train_classifier(data, backbone, "feature-extraction", config, log=quiet), data


def test_the_solved_head_matches_an_independent_converged_probe_where_sgd_under_fits():
    solved, data = _fit("lbfgs")
    sgd, _ = _fit("sgd")
    backbone = solved.model.backbone.eval()
    with torch.no_grad():
        x = torch.cat([backbone.forward_features(data.train_eval[i][0][None]) for i in range(len(data.train_eval))])
        v = torch.cat([backbone.forward_features(data.val[i][0][None]) for i in range(len(data.val))])
    y = np.array([data.train_eval[i][1] for i in range(len(data.train_eval))])
    yv = np.array([data.val[i][1] for i in range(len(data.val))])
    scaler = StandardScaler().fit(x.numpy())
    reference = LogisticRegressionCV(  # scikit-learn's own
        Cs=[0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
        cv=3,
        max_iter=5000,
        l1_ratios=(0.0,),
        scoring="accuracy",
        use_legacy_attributes=False,
    )
    reference_accuracy = reference.fit(scaler.transform(x.numpy()), y).score(scaler.transform(v.numpy()), yv)
    assert len(solved.history) == 1  # one solve, not epochs
    assert solved.metrics.accuracy >= reference_accuracy - 0.05
    assert sgd.metrics.accuracy < solved.metrics.accuracy - 0.15  # ten epochs of SGD are far from converged
