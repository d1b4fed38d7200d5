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


def _groups_and_extra(extra_informative: bool):
    rng = np.random.default_rng(1)
    y = np.arange(90) % 3
    signal = lambda scale: rng.normal(size=(90, 4)) + scale * np.eye(3)[y] @ rng.normal(size=(3, 4))  # noqa: E731
    features = {name: rng.normal(size=(90, 4)) for name in ("g0", "g1", "g2")}
    features["g3"] = signal(1.0)  # some signal in the groups
    features["hog"] = signal(3.0) if extra_informative else rng.normal(size=(90, 40))
    return features, y


def test_an_extra_block_is_added_where_cross_validation_says_it_helps():
    features, y = _groups_and_extra(extra_informative=True)
    choice = select_layers(features, y, extra=["hog"])
    assert choice.layers[-1] == "hog" and "g3" in choice.layers
    assert all(names[-1] != "hog" or len(names) > 1 for names, _ in choice.scores)  # never the extra alone
    assert len(choice.scores) == 2 * len(candidate_sets(["g0", "g1", "g2", "g3"]))


def test_an_uninformative_extra_block_is_left_out():
    features, y = _groups_and_extra(extra_informative=False)
    assert "hog" not in select_layers(features, y, extra=["hog"]).layers
