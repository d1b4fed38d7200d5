"""--layers auto: candidates near the top, chosen by cross-validation on training features."""

import numpy as np

from transferkit.strategies.layer_selection import candidate_sets, select_layers


def test_candidates_end_in_the_deeper_half():
    sets = candidate_sets(["a", "b", "c", "d", "e", "f"])
    assert ["d"] in sets and ["b", "c", "d"] in sets and ["d", "e", "f"] in sets
    assert all(s[-1] in {"d", "e", "f"} for s in sets) and ["c"] not in sets


def test_the_informative_group_is_chosen_over_noise():
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    informative = rng.normal(size=(90, 4)) + 2.0 * np.eye(3)[y] @ rng.normal(size=(3, 4))
    features = {name: rng.normal(size=(90, 4)) for name in ("g0", "g1", "g2", "g4")}
    features["g3"] = informative
    features = {k: features[k] for k in ("g0", "g1", "g2", "g3", "g4")}
    choice = select_layers(features, y)
    assert "g3" in choice.layers
    assert choice.scores[0][1] > 0.8


def test_a_class_of_one_image_falls_back_to_the_last_group():
    rng = np.random.default_rng(0)
    y = np.array([0, 0, 0, 1, 1, 1, 2])
    features = {f"g{i}": rng.normal(size=(7, 3)) for i in range(4)}
    assert select_layers(features, y).layers == ["g3"]
