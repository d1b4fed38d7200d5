"""The solved linear probe minimises scikit-learn's logistic-regression objective."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from transferkit.errors import ConfigError
from transferkit.heads import create_head
from transferkit.heads.probe import linear_probe, load_into_head


def _problem(n=120, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, d)) * np.array([5.0, 0.1, 1, 1, 1, 1])[:d] + 3.0  # unscaled on purpose
    x[:, 2] += 1.5 * y
    return x, y


def test_probe_matches_scikit_learn_logistic_regression_at_the_same_C():
    x, y = _problem()
    probe = linear_probe(x, y, Cs=(0.3,))
    reference = LogisticRegression(C=0.3, max_iter=5000, tol=1e-10).fit(StandardScaler().fit_transform(x), y)
    expected = reference.predict_proba(StandardScaler().fit(x).transform(x))
    got = probe.logits(torch.as_tensor(x, dtype=torch.float32)).softmax(1).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_cross_validation_picks_strong_regularisation_for_pure_noise():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(90, 40)), np.arange(90) % 3  # labels carry no information
    probe = linear_probe(x, y, Cs=(0.003, 10.0))
    assert probe.C == 0.003 and not np.isnan(probe.cv_accuracy)


def test_a_class_with_one_example_falls_back_to_a_fixed_C():
    x, y = _problem(n=31)
    y[-1] = 3  # a fourth class with one image: nothing to cross-validate
    probe = linear_probe(x, y, num_classes=4)
    assert probe.C == 0.1 and np.isnan(probe.cv_accuracy)


def test_probe_loads_into_a_linear_head_and_refuses_an_mlp():
    x, y = _problem()
    probe = linear_probe(x, y, Cs=(1.0,))
    head = create_head("linear", 6, 3)
    load_into_head(probe, head)
    xt = torch.as_tensor(x, dtype=torch.float32)
    assert torch.allclose(head(xt), probe.logits(xt), atol=1e-5)
    with pytest.raises(ConfigError, match="linear head"):
        load_into_head(probe, create_head("mlp", 6, 3))


def test_past_max_rows_C_is_cross_validated_on_a_stratified_subsample(monkeypatch):
    from transferkit.heads import probe as module

    seen = []
    original = module.fit_logistic

    def spy(x, y, *args, **kwargs):
        seen.append(np.bincount(y.numpy(), minlength=3))
        return original(x, y, *args, **kwargs)

    monkeypatch.setattr(module, "fit_logistic", spy)
    x, y = _problem(n=300)
    y[:150] = 0  # classes 0, 1, 2 hold 150 + 75 + 75 rows: half, a quarter, a quarter
    y[150:225], y[225:] = 1, 2
    module.cross_validate(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y), 3, (0.1,), folds=3,
                          max_rows=60)  # fmt: skip
    # 60 rows kept (30 + 15 + 15); each of the 3 folds trains on two thirds of them
    assert [counts.tolist() for counts in seen] == [[20, 10, 10]] * 3
