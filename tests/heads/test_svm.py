"""KernelSVMHead reproduces scikit-learn's calibrated RBF SVM exactly, from plain tensors."""

import numpy as np
import pytest
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC

from transferkit.errors import ConfigError
from transferkit.heads import create_head
from transferkit.heads.svm import KernelSVMHead, ovr_scores


def _fitted(k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(90) % k
    x = rng.normal(size=(90, 5))
    x[:, 0] += y  # informative but overlapping: many support vectors, non-trivial probabilities
    calibrated = CalibratedClassifierCV(SVC(C=1.0), method="temperature", ensemble=False, cv=3).fit(x, y)
    return calibrated, rng.normal(size=(40, 5))


@pytest.mark.parametrize("k", [2, 3, 5])
def test_head_matches_scikit_learn_decision_function_and_probabilities(k):
    calibrated, x = _fitted(k)
    head = KernelSVMHead.from_sklearn(calibrated)
    svc = calibrated.calibrated_classifiers_[0].estimator
    with torch.no_grad():
        scores = head.scores(torch.as_tensor(x)).numpy()
        probs = head(torch.as_tensor(x)).exp().numpy()
    np.testing.assert_allclose(scores, svc.decision_function(x), atol=1e-9)
    np.testing.assert_allclose(probs, calibrated.predict_proba(x), atol=1e-9)
    assert (probs.argmax(1) == svc.predict(x)).all()  # one temperature keeps the SVM's own decision


def test_input_standardisation_is_part_of_the_head():
    calibrated, x = _fitted(3)
    mean, scale = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]), torch.tensor([2.0, 0.5, 1.0, 4.0, 1.5])
    head = KernelSVMHead.from_sklearn(calibrated, mean, scale)
    raw = torch.as_tensor(x) * scale.double() + mean.double()  # what the head sees before standardising
    with torch.no_grad():
        np.testing.assert_allclose(head(raw).exp().numpy(), calibrated.predict_proba(x), atol=1e-9)


def test_a_rebuilt_head_loads_the_saved_buffers():
    calibrated, x = _fitted(3)
    head = KernelSVMHead.from_sklearn(calibrated)
    twin = create_head("svm", head.in_features, 3, n_support=head.n_support)
    twin.load_state_dict(head.state_dict())
    with torch.no_grad():
        assert torch.equal(twin(torch.as_tensor(x)), head(torch.as_tensor(x)))


def test_ovr_scores_count_votes_by_hand():
    # 3 classes, pairs (0,1), (0,2), (1,2): class 0 beats 1 and 2, class 2 beats 1
    ovo = torch.tensor([[1.0, 2.0, -0.5]], dtype=torch.float64)
    scores = ovr_scores(ovo, 3)[0]
    votes = torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64)
    confidence = torch.tensor([1.0 + 2.0, -1.0 - 0.5, -2.0 + 0.5], dtype=torch.float64)
    expected = votes + confidence / (3 * (confidence.abs() + 1))
    assert torch.allclose(scores, expected)


def test_only_a_temperature_calibrated_rbf_svm_is_accepted():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)), np.arange(30) % 2
    sigmoid = CalibratedClassifierCV(SVC(), method="sigmoid", ensemble=False, cv=3).fit(x, y)
    with pytest.raises(ConfigError, match="RBF SVC"):
        KernelSVMHead.from_sklearn(sigmoid)
