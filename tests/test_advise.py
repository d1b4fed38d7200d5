"""advise: size and closeness are measured, the table is applied, negative transfer is caught."""

import torch

from transferkit.advise import TABLE, advise, closeness_of, size_of

from .conftest import make_tiny_backbone
from .engine.helpers import config, tiny_data


def test_size_and_closeness_thresholds_and_the_table_covers_every_case():
    assert (size_of(10), size_of(100), size_of(1000)) == ("small", "medium", "large")
    assert (closeness_of(0.9), closeness_of(0.7), closeness_of(0.3)) == ("close", "moderate", "far")
    from itertools import product

    from transferkit.strategies import strategies

    assert set(TABLE) == set(product(("small", "medium", "large"), ("close", "moderate", "far")))
    assert all(name in strategies for name in TABLE.values())  # every advice is a strategy fit can run


def test_blind_pretrained_features_are_flagged_as_negative_transfer():
    torch.manual_seed(0)
    scratch, data = tiny_data(n_per_class=12)
    blind = make_tiny_backbone()
    with torch.no_grad():
        blind.model[0][0].weight.zero_()  # "pretrained" features that ignore the image
    advice = advise(data, blind, scratch, budget_epochs=2, config=config(), log=lambda _: None)
    assert advice.negative_transfer and "scratch" in advice.strategy and "sklearn-pixels-svm" in advice.strategy
    assert advice.pretrained_probe < advice.scratch_probe
    assert set(advice.budget) == {"epochs", "transfer", "scratch", "hog-svm", "pixels-svm"}


def test_informative_features_get_a_table_strategy():
    torch.manual_seed(0)
    pretrained, data = tiny_data(n_per_class=12)
    blind = make_tiny_backbone()
    with torch.no_grad():
        blind.model[0][0].weight.zero_()
    advice = advise(data, pretrained, blind, log=lambda _: None)
    assert not advice.negative_transfer
    assert advice.strategy == TABLE[(advice.size, advice.closeness)] and advice.size == "small"


def test_a_classical_baseline_ahead_of_the_pretrained_features_is_negative_transfer():
    torch.manual_seed(0)
    _, data = tiny_data(n_per_class=12)  # classes differ by colour: raw pixels separate them perfectly
    blind = make_tiny_backbone()
    with torch.no_grad():
        blind.model[0][0].weight.zero_()
    lines = []
    advice = advise(data, blind, make_tiny_backbone(), config=config(), log=lines.append)
    assert advice.classical["pixels-svm"] > advice.pretrained_probe + 0.01
    assert advice.negative_transfer and advice.strategy.startswith("sklearn-pixels-svm")
    assert any("classical baseline is AHEAD" in r for r in advice.reasons)


def test_input_size_is_measured_and_recommended():
    torch.manual_seed(0)
    pretrained, data = tiny_data(n_per_class=12)
    advice = advise(data, pretrained, make_tiny_backbone(), sizes=(16, 24), log=lambda _: None)
    assert set(advice.size_probes) == {16, 24} and advice.input_size in (16, 24)
    best = max(advice.size_probes.values())
    assert advice.size_probes[advice.input_size] == best
