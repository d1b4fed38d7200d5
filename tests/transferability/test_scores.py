"""Transferability scores: what the papers promise, on features whose usefulness we control."""

import numpy as np
import pytest

from transferkit.api import training_images
from transferkit.errors import DataError
from transferkit.transferability import rank_backbones, score, scores
from transferkit.transferability.hscore import hscore
from transferkit.transferability.leep import leep_from_posteriors
from transferkit.transferability.nce import nce_from_source_labels
from transferkit.transferability.rank import format_ranking

from ..conftest import make_tiny_backbone, write_class_images


def _features(signal: float, n_per_class=40, classes=4, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = rng.normal(size=(classes, dim)) * signal
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


@pytest.mark.parametrize("name", ["logme", "leep", "nce", "hscore"])
def test_informative_features_score_above_noise(name):
    informative, labels = _features(signal=3.0)
    weak, _ = _features(signal=0.5)
    noise, _ = _features(signal=0.0)
    s_inf, s_weak, s_noise = (score(name, f, labels) for f in (informative, weak, noise))
    assert s_inf > s_weak > s_noise, (s_inf, s_weak, s_noise)


def test_logme_does_not_depend_on_label_coding():
    f, labels = _features(signal=2.0)
    assert score("logme", f, labels) == pytest.approx(score("logme", f, labels * 10 + 3))


def test_leep_of_a_perfect_source_is_zero_and_of_an_uninformative_one_is_minus_log_k():
    labels = np.repeat(np.arange(3), 10)
    perfect = np.eye(3)[labels]  # each source label identifies one target class
    assert leep_from_posteriors(perfect, labels) == pytest.approx(0.0, abs=1e-9)
    uniform = np.full((30, 5), 0.2)
    assert leep_from_posteriors(uniform, labels) == pytest.approx(np.log(1 / 3))


def test_nce_is_minus_conditional_entropy():
    labels = np.array([0, 0, 1, 1])
    assert nce_from_source_labels(np.array([7, 7, 9, 9]), labels) == pytest.approx(0.0)
    assert nce_from_source_labels(np.array([7, 7, 7, 7]), labels) == pytest.approx(-np.log(2))


def test_h_score_of_one_dimensional_features_is_the_fisher_ratio():
    f = np.array([[-1.0], [-1.0], [1.0], [1.0]])
    # between-class variance 1, total variance 1 → H = 1
    assert hscore(f, np.array([0, 0, 1, 1]), shrinkage=False) == pytest.approx(1.0)


def test_regularised_h_score_is_the_published_formula_computed_by_hand():
    from sklearn.covariance import ledoit_wolf_shrinkage

    rng = np.random.default_rng(0)
    n, d = 40, 30  # few samples, wide features: the regime where the shrinkage matters
    y = np.arange(n) % 4
    f = rng.normal(size=(n, d))
    f[:, 0] += y
    centred = f - f.mean(0)
    alpha = ledoit_wolf_shrinkage(centred, assume_centered=True)
    empirical = centred.T @ centred / n
    shrunk = (1 - alpha) * empirical + alpha * np.trace(empirical) / d * np.eye(d)  # Ledoit & Wolf (2004)
    class_means = np.stack([centred[y == k].mean(0) for k in y])
    expected = np.trace(np.linalg.inv(shrunk) @ ((1 - alpha) * np.cov(class_means, rowvar=False)))
    assert 0.05 < alpha < 1
    assert hscore(f, y) == pytest.approx(expected, rel=1e-6)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(DataError, match="at least 2 classes"):
        score("logme", np.ones((4, 2)), np.zeros(4))
    with pytest.raises(DataError, match="NaN"):
        score("hscore", np.full((4, 2), np.nan), np.array([0, 0, 1, 1]))
    assert set(scores.names()) >= {"logme", "leep", "nce", "hscore"}


def test_rank_backbones_puts_an_informative_backbone_first(tmp_path):
    """A network that sees the class colour channel ranks above one whose features are constant."""
    import torch

    root = write_class_images(tmp_path / "data", per_class=10)
    good = make_tiny_backbone()
    blind = make_tiny_backbone()
    with torch.no_grad():
        blind.model[0][0].weight.zero_()  # features no longer depend on the image
        blind.model[0][0].bias.fill_(0.1)
    blind.name = "blind"
    ranking = rank_backbones(training_images(root), [blind, good], log=lambda _: None)
    assert [r.backbone for r in ranking] == ["tiny", "blind"]
    assert all(set(r.scores) == {"logme", "leep", "nce", "hscore"} for r in ranking)
    assert all(r.source_labels.startswith("GMM") for r in ranking)  # tiny nets have no pretrained classifier
    assert "n-leep" in format_ranking(ranking) and "N-LEEP" in format_ranking(ranking)


def test_rank_uses_a_pretrained_classifier_for_leep_and_nce_when_every_backbone_has_one(tmp_path):
    import torch

    from transferkit.inference import dataset_features

    root = write_class_images(tmp_path / "data", per_class=10)
    backbone = make_tiny_backbone()
    head = torch.nn.Linear(backbone.num_features, 7)  # a 7-class "source task"
    backbone.set_source_head(head)
    (row,) = rank_backbones(training_images(root), [backbone], log=lambda _: None, max_images=None)
    assert row.source_labels == "pretrained classifier"
    from transferkit.api import load_data

    data = load_data(root, backbone.data_config, preset="none")
    features, labels = dataset_features(backbone, data.train_eval)
    with torch.no_grad():
        probs = head(features).softmax(1).double().numpy()
    assert row.scores["leep"] == pytest.approx(leep_from_posteriors(probs, labels.numpy()), abs=1e-6)
    assert row.scores["nce"] == pytest.approx(nce_from_source_labels(probs.argmax(1), labels.numpy()), abs=1e-6)
    assert "leep" in format_ranking([row]) and "n-leep" not in format_ranking([row])
