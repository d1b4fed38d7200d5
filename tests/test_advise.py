"""advise: size and closeness are measured, the table is applied, negative transfer is caught."""

import torch

from transferkit.advise import TABLE, advise, closeness_of, size_of

from .conftest import make_tiny_backbone
from .engine.helpers import config, tiny_data


def test_size_and_closeness_thresholds_and_the_table_covers_every_case():
    assert (size_of(10), size_of(100), size_of(1000)) == ("small", "medium", "large")
    assert (closeness_of(0.9), closeness_of(0.7), closeness_of(0.3)) == ("close", "moderate", "far")
    assert len(TABLE) == 9


def test_blind_pretrained_features_are_flagged_as_negative_transfer():
    torch.manual_seed(0)
    scratch, data = tiny_data(n_per_class=12)
    blind = make_tiny_backbone()
    with torch.no_grad():
        blind.model[0][0].weight.zero_()  # "pretrained" features that ignore the image
    advice = advise(data, blind, scratch, budget_epochs=2, config=config(), log=lambda _: None)
    assert advice.negative_transfer and "scratch" in advice.strategy
    assert advice.pretrained_probe < advice.scratch_probe
    assert set(advice.budget) == {"epochs", "transfer", "scratch"}


def test_informative_features_get_a_table_strategy():
    torch.manual_seed(0)
    pretrained, data = tiny_data(n_per_class=12)
    blind = make_tiny_backbone()
    with torch.no_grad():
        blind.model[0][0].weight.zero_()
    advice = advise(data, pretrained, blind, log=lambda _: None)
    assert not advice.negative_transfer
    assert advice.strategy == TABLE[(advice.size, advice.closeness)] and advice.size == "small"
