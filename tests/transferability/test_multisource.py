"""Multi-source: combining sources helps, and a source that carries nothing is dropped."""

import numpy as np
import pytest

from transferkit.errors import ConfigError
from transferkit.transferability.multisource import combine_sources


def _sources(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 30)
    centres_a, centres_b = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    # a and b each see the classes partly (noisy); together they see them better; noise sees nothing
    a = centres_a[labels] + 1.2 * rng.normal(size=(120, 6))
    b = centres_b[labels] + 1.2 * rng.normal(size=(120, 6))
    noise = rng.normal(size=(120, 40))
    return {"a": a, "b": b, "noise": noise}, labels


def test_selective_transfer_keeps_complementary_sources_and_drops_noise():
    sources, labels = _sources()
    _, result = combine_sources(sources, labels, "selective", log=lambda _: None)
    assert set(result.selected) == {"a", "b"} and result.dropped == ["noise"]
    assert result.cv_accuracy > max(result.single_source_accuracy["a"], result.single_source_accuracy["b"])


def test_weighted_sources_follow_transferability():
    sources, labels = _sources()
    combined, result = combine_sources(sources, labels, "weighted", log=lambda _: None)
    assert result.weights["noise"] < min(result.weights["a"], result.weights["b"])
    assert combined.shape == (120, 52) and sum(result.weights.values()) == pytest.approx(1.0)


def test_one_source_is_not_multi_source():
    sources, labels = _sources()
    with pytest.raises(ConfigError, match="at least 2"):
        combine_sources({"a": sources["a"]}, labels)
