"""Self-training: the balanced pseudo-label rule by hand, its gain on clustered data, selection on validation."""

import pytest
import torch

from transferkit.errors import ConfigError
from transferkit.semi.label_propagation import GraphConfig
from transferkit.semi.self_training import SelfTrainingConfig, Views, _round_data, balanced_pseudo_labels, self_train

QUIET = {"log": lambda _: None}


def test_each_class_keeps_its_most_confident_candidates_and_no_more():
    probs = torch.tensor(
        [
            [0.9, 0.05, 0.05],  # 0: class 0, 0.9
            [0.6, 0.3, 0.1],  # 1: class 0, 0.6
            [0.8, 0.1, 0.1],  # 2: class 0, 0.8
            [0.2, 0.7, 0.1],  # 3: class 1, 0.7
            [0.1, 0.45, 0.45],  # 4: class 1 (first of equals), 0.45
            [0.3, 0.3, 0.4],  # 5: class 2, 0.4
        ]
    )
    index, labels = balanced_pseudo_labels(probs, per_class=2)
    assert index.tolist() == [0, 2, 3, 4, 5]  # class 0 keeps 0.9 and 0.8, not 0.6; class 2 has one candidate
    assert labels.tolist() == [0, 0, 1, 1, 2]
    index, labels = balanced_pseudo_labels(probs, per_class=0)
    assert len(index) == len(labels) == 0


def test_later_rounds_weight_the_labelled_images_by_the_configured_share():
    labelled = Views(torch.randn(4, 3), [torch.randn(4, 3)])
    unlabelled = Views(torch.randn(40, 3), [torch.randn(40, 3)])
    cfg = SelfTrainingConfig(rounds=2, final_share=0.5, labelled_weight=0.25, relabel="head")

    class Fixed(torch.nn.Module):  # predicts class (row index mod 2) with confidence growing with the row
        num_classes = 2

        def forward(self, x):
            rows = torch.arange(len(x))
            scale = rows.float() / 10  # distinct confidences: softmax would saturate to 1.0 at large logits
            return torch.stack([(rows % 2 == 0) * scale, (rows % 2 == 1) * scale], 1)

    views, targets, weights = _round_data(2, Fixed(), labelled, torch.tensor([0, 1, 0, 1]), unlabelled, cfg)
    assert len(targets) == 4 + 20  # 0.5 of 40 images, 10 per class
    assert torch.isclose(weights[:4].sum(), torch.tensor(0.25)) and torch.isclose(weights.sum(), torch.tensor(1.0))
    assert torch.equal(views.weak[4:], unlabelled.weak[[38, 36, 34, 32, 30, 28, 26, 24, 22, 20, 39, 37, 35, 33, 31,
                                                         29, 27, 25, 23, 21]])  # fmt: skip


def _blobs(seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(4, 8, generator=g) * 1.6

    def sample(n):
        y = torch.arange(4).repeat_interleave(n)
        return centres[y] + torch.randn(len(y), 8, generator=g), y

    def jitter(x):
        return x + 0.3 * torch.randn(x.shape, generator=g)

    (lx, ly), (ux, _), val, test = sample(2), sample(150), sample(50), sample(250)
    return Views(lx, [jitter(lx)]), ly, Views(ux, [jitter(ux)]), val, test


def _accuracy(head, features, labels) -> float:
    return float((head(features).argmax(1) == labels).float().mean())


def test_unlabelled_clusters_raise_accuracy_over_the_labelled_only_round():
    """Two labels per class in four Gaussian clusters: the 600 unlabelled points show where the clusters are. The
    head kept on validation is scored on 1,000 other points, against round 0's (the labelled points only)."""
    gains = []
    for seed in range(5):
        labelled, labels, unlabelled, val, test = _blobs(seed)
        cfg = SelfTrainingConfig(rounds=3, steps=150, batch_size=64, hidden=32, seed=seed)
        head, history, heads = self_train(labelled, labels, unlabelled, val, 4, cfg, **QUIET)
        accuracies = [row["val_acc"] for row in history]
        assert head is heads[accuracies.index(max(accuracies))]  # the round kept is the best on validation
        gains.append(_accuracy(head, *test) - _accuracy(heads[0], *test))
    assert sum(gains) / len(gains) > 0.05 and min(gains) > 0, gains


def test_the_graph_round_labels_every_unlabelled_image_and_balances_the_classes():
    """Round 1 with ``graph``: all 350 unlabelled points, their clusters' classes; a class of 300 and one of 50 get
    comparable shares of the sampling mass (certainty / class count), the labelled ones ``labelled_weight``."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(2, 8, generator=g) * 4
    truth = torch.cat([torch.zeros(300), torch.ones(50)]).long()
    pool = centres[truth] + torch.randn(350, 8, generator=g)
    labelled = Views(centres[[0, 0, 1, 1]] + torch.randn(4, 8, generator=g), [])
    # not whitened: here one direction separates the classes and seven are noise, which whitening would equalise
    cfg = SelfTrainingConfig(rounds=2, labelled_weight=0.3, graph=GraphConfig(whiten=False))

    class Unused(torch.nn.Module):  # round 1 reads only its class count: the graph labels the images
        num_classes = 2

    views, targets, weights = _round_data(1, Unused(), labelled, torch.tensor([0, 0, 1, 1]), Views(pool, []), cfg)
    assert len(targets) == 4 + 350 and torch.equal(views.weak[4:], pool)
    assert (targets[4:] == truth).float().mean() > 0.97
    assert torch.isclose(weights[:4].sum(), torch.tensor(0.3)) and torch.isclose(weights.sum(), torch.tensor(1.0))
    mass = [float(weights[4:][targets[4:] == c].sum()) for c in (0, 1)]
    assert 0.5 < mass[0] / mass[1] < 2, mass  # by count alone: 6


def test_later_rounds_propagate_the_labels_on_the_previous_heads_hidden_layer():
    """Round 2 (``relabel="graph"``): the raw features are 1 column of class signal among 39 of noise, where round 1's
    graph cannot find the classes; the head's hidden layer keeps only the signal, and its graph labels the pool."""
    g = torch.Generator().manual_seed(0)
    truth = torch.arange(2).repeat(100)
    pool = torch.cat([(2 * truth - 1).float().unsqueeze(1) * 3, 10 * torch.randn(200, 39, generator=g)], 1)
    labels = torch.tensor([0, 1, 0, 1])
    labelled = torch.cat([(2 * labels - 1).float().unsqueeze(1) * 3, 10 * torch.randn(4, 39, generator=g)], 1)
    cfg = SelfTrainingConfig(rounds=2, labelled_weight=0.3)

    class SignalHead(torch.nn.Module):  # hidden layer: the signal column; its own probabilities: uniform
        num_classes = 2

        def embed(self, x):
            return x[:, :1]

        def forward(self, x):
            return torch.zeros(len(x), 2)

    args = (SignalHead(), Views(labelled, []), labels, Views(pool, []), cfg)
    _, raw, _ = _round_data(1, *args)
    views, targets, weights = _round_data(2, *args)
    assert (raw[4:] == truth).float().mean() < 0.8  # the raw features' graph: mostly noise
    assert len(targets) == 4 + 200 and torch.equal(views.weak[4:], pool)
    assert torch.equal(targets[4:], truth)
    assert torch.isclose(weights[:4].sum(), torch.tensor(0.3)) and torch.isclose(weights.sum(), torch.tensor(1.0))


def test_an_unknown_relabel_rule_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"relabel must be one of \['graph', 'head'\], got 'heads'"):
        SelfTrainingConfig(relabel="heads")
    assert SelfTrainingConfig().graph_builds() == 4 and SelfTrainingConfig(relabel="head").graph_builds() == 1
    assert SelfTrainingConfig(graph=None).graph_builds() == 0 == SelfTrainingConfig(rounds=0).graph_builds()


def test_a_rounds_head_does_not_depend_on_the_processs_random_state():
    labelled, labels, unlabelled, val, _ = _blobs(0)
    cfg = SelfTrainingConfig(rounds=1, steps=20, min_steps=20, batch_size=16, hidden=8)
    heads = []
    for state in (1, 2):
        torch.manual_seed(state)
        heads.append(self_train(labelled, labels, unlabelled, val, 4, cfg, **QUIET)[0].state_dict())
    assert heads[0].keys() == heads[1].keys() and all(torch.equal(heads[0][k], heads[1][k]) for k in heads[0])
