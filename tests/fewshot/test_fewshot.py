"""Few-shot: episodes are what they claim, the CI is the textbook one, each method learns."""

import numpy as np
import pytest
import torch

from transferkit.errors import ConfigError
from transferkit.fewshot import EpisodeSampler, confidence_interval, fewshot_methods, run_fewshot, split_classes
from transferkit.fewshot.base import prototypes


def _features(classes=20, per_class=30, signal_dims=8, noise_dims=56, noise=1.5, seed=0):
    """Class identity lives in a shared low-dimensional subspace; other dimensions are nuisance."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    centres = torch.randn(classes, signal_dims, generator=g) * 1.0
    signal = centres[labels] + 0.3 * torch.randn(len(labels), signal_dims, generator=g)
    nuisance = noise * torch.randn(len(labels), noise_dims, generator=g)
    return torch.cat([signal, nuisance], 1) + 3.0, labels


def test_episodes_have_the_requested_shape_disjoint_sets_and_are_reproducible():
    x, y = _features()
    sampler = EpisodeSampler(x, y, way=5, shot=3, query=4, seed=1)
    e = sampler.episode(0)
    assert e.support.shape == (15, 64) and e.query.shape == (20, 64)
    assert e.support_labels.tolist() == [k for k in range(5) for _ in range(3)]
    assert len(set(e.classes)) == 5
    rows = {tuple(r.tolist()) for r in e.support} & {tuple(r.tolist()) for r in e.query}
    assert not rows
    assert torch.equal(sampler.episode(0).support, e.support) and not torch.equal(sampler.episode(1).support, e.support)


def test_too_few_images_per_class_is_a_clear_error():
    x, y = _features(per_class=5)
    with pytest.raises(ConfigError, match="Lower --way, --shot or --query"):
        EpisodeSampler(x, y, way=5, shot=5, query=15)


def test_confidence_interval_is_1_96_sigma_over_root_n():
    acc = np.array([0.5, 0.7, 0.6, 0.8])
    mean, ci = confidence_interval(acc)
    assert mean == pytest.approx(0.65) and ci == pytest.approx(1.96 * acc.std(ddof=1) / 2)


def test_protonet_logits_are_negative_squared_distances_to_prototypes():
    x, y = _features()
    net = fewshot_methods.get("protonet")(64)
    e = EpisodeSampler(x, y, 5, 2, 3).episode(0)
    logits = net.predict(e.support, e.support_labels, e.query, 5)
    from transferkit.fewshot.base import normalize

    s, q = net.embed(normalize(e.support)), net.embed(normalize(e.query))
    expected = -((q[:, None, :] - prototypes(s, e.support_labels, 5)[None]) ** 2).sum(-1)
    assert torch.allclose(logits, expected, atol=1e-4)


def test_split_classes_is_seeded_and_disjoint():
    _, y = _features()
    base, novel = split_classes(y, 8, seed=3)
    assert len(novel) == 8 and not set(base) & set(novel) and split_classes(y, 8, seed=3)[1] == novel


@pytest.mark.parametrize("name", ["protonet", "matching", "relation", "maml", "reptile"])
def test_meta_training_lowers_the_episode_loss(name):
    x, y = _features()
    torch.manual_seed(0)
    kwargs = {"way": 5} if name in ("maml", "reptile") else {}
    method = fewshot_methods.get(name)(64, **kwargs)
    losses = method.meta_train(EpisodeSampler(x, y, 5, 5, 5), episodes=150, lr=1e-3)
    assert np.mean(losses[-30:]) < np.mean(losses[:30]), name


def test_every_method_beats_chance_and_meta_learning_ignores_nuisance_dimensions():
    x, y = _features()
    _, novel = split_classes(y, 10, seed=0)
    methods = ["simpleshot", "fine-tune", "protonet", "matching", "relation", "maml", "reptile"]
    results = run_fewshot(
        x, y, novel, methods, way=5, shots=(5,), query=10, episodes=60, meta_episodes=300, log=lambda _: None
    )
    acc = {r.method: r.accuracy for r in results}
    assert all(a > 0.3 for a in acc.values()), acc  # chance is 0.2; CIs are about ±0.025
    assert all(0 < r.ci95 < 0.1 for r in results)
    # ProtoNet learns from base classes which dimensions carry class identity; SimpleShot cannot
    assert acc["protonet"] > acc["simpleshot"] + 0.03, acc
