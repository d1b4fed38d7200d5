"""Label propagation: the graph's weights by hand, the diffusion against its series and its limit (a dense solve),
certainty by hand, and a chain that a nearest-labelled-image rule gets half wrong."""

import math

import torch
from torch.nn import functional as F

from transferkit.semi.label_propagation import (
    GraphConfig,
    certainty,
    graph_pseudo_labels,
    knn_graph,
    propagate,
    pseudo_label_weights,
)


def _unit(degrees_lat_lon):
    lat, lon = (torch.tensor(degrees_lat_lon, dtype=torch.float64).T * math.pi / 180).float()
    return torch.stack([lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()], 1)


def test_one_neighbour_graph_is_symmetrised_and_normalised_by_hand():
    points = _unit([(0, 0), (0, 10), (0, 30)])  # 0's nearest is 1, 1's is 0, 2's is 1
    graph = knn_graph(points, GraphConfig(neighbours=1, gamma=3.0)).to_dense()
    a, b = math.cos(math.radians(10)) ** 3, math.cos(math.radians(20)) ** 3
    # W = A + Aᵀ: w01 = 2a, w12 = b; degrees 2a, 2a + b, b
    expected = torch.zeros(3, 3)
    expected[0, 1] = expected[1, 0] = 2 * a / math.sqrt(2 * a * (2 * a + b))
    expected[1, 2] = expected[2, 1] = b / math.sqrt((2 * a + b) * b)
    assert torch.allclose(graph, expected, atol=1e-5)


def _seeds(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.tensor([0, 1, 2, 0])
    y = torch.zeros(n, 3, dtype=torch.float64)
    y[torch.arange(4), labels] = torch.tensor([0.5, 1.0, 1.0, 0.5], dtype=torch.float64)  # class 0 has 2 seeds
    return labels, y


def _normalised(z: torch.Tensor) -> torch.Tensor:
    z = z.clamp(min=0) + 1e-12
    return z / z.sum(1, keepdim=True)


def test_two_steps_of_propagation_are_the_series_by_hand():
    """Y + αW̃Y + (αW̃)²Y, each class's seeds divided by its count, rows normalised."""
    g = torch.Generator().manual_seed(0)
    graph = knn_graph(F.normalize(torch.randn(40, 6, generator=g), dim=1), GraphConfig(neighbours=5))
    labels, y = _seeds(40)
    w = 0.5 * graph.to_dense().double()
    expected = _normalised(y + w @ y + w @ w @ y)
    assert torch.allclose(propagate(graph, labels, 3, GraphConfig(alpha=0.5, steps=2)).double(), expected, atol=1e-6)


def test_many_steps_reach_the_label_spreading_solution():
    """Zhou et al.'s limit Z = (I - α W̃)⁻¹ Y, here from a dense solve."""
    g = torch.Generator().manual_seed(0)
    graph = knn_graph(F.normalize(torch.randn(40, 6, generator=g), dim=1), GraphConfig(neighbours=5))
    labels, y = _seeds(40)
    z = torch.linalg.solve(torch.eye(40, dtype=torch.float64) - 0.9 * graph.to_dense().double(), y)
    assert torch.allclose(propagate(graph, labels, 3, GraphConfig(alpha=0.9, steps=300)).double(), _normalised(z),
                          atol=1e-5)  # fmt: skip


def test_labels_travel_along_a_chain_that_nearest_labelled_images_get_wrong():
    """Two parallel arcs 12° apart, points 2° apart, a label at opposite ends: each arc's far part lies nearer
    the other arc's labelled point, but its neighbours are on its own arc (15 edges: within the 40 steps)."""
    lon = torch.arange(0, 32, 2.0)
    arc_a, arc_b = _unit([(0, x) for x in lon]), _unit([(12, x) for x in lon])
    points = torch.cat([arc_a[:1], arc_b[-1:], arc_a[1:], arc_b[:-1]])  # the labelled points first
    truth = torch.cat([torch.zeros(len(lon) - 1), torch.ones(len(lon) - 1)]).long()
    nearest = (points[2:] @ points[:2].T).argmax(1)
    assert (nearest == truth).float().mean() < 0.6
    probs = propagate(knn_graph(points, GraphConfig(neighbours=2)), torch.tensor([0, 1]), 2)
    assert torch.equal(probs[2:].argmax(1), truth)


def test_certainty_and_weights_by_hand():
    probs = torch.tensor([[1.0, 0, 0, 0], [0.25] * 4, [0.5, 0.5, 0, 0], [0.1, 0.7, 0.1, 0.1]])
    h = -(0.1 * math.log(0.1) * 3 + 0.7 * math.log(0.7))
    expected = torch.tensor([1.0, 0.0, 1 - math.log(2) / math.log(4), 1 - h / math.log(4)])
    assert torch.allclose(certainty(probs), expected, atol=1e-6)
    labels, weights = pseudo_label_weights(probs)  # classes 0, 0, 0, 1: three rows in class 0, one in class 1
    assert labels.tolist() == [0, 0, 0, 1]
    assert torch.allclose(weights, expected / torch.tensor([3.0, 3.0, 3.0, 1.0]), atol=1e-6)


def test_pseudo_labels_of_separated_clusters_are_their_labelled_classes():
    g = torch.Generator().manual_seed(1)
    centres = torch.randn(3, 20, generator=g) * 3
    y = torch.arange(3).repeat_interleave(60)
    x = centres[y] + torch.randn(len(y), 20, generator=g)
    probs = graph_pseudo_labels(x[[0, 60, 120]], torch.tensor([0, 1, 2]), x, 3, GraphConfig(neighbours=5, whiten=False))
    assert probs.shape == (180, 3) and torch.allclose(probs.sum(1), torch.ones(180))
    assert (probs.argmax(1) == y).float().mean() > 0.95


def test_a_pool_of_one_image_gets_finite_scores():
    """The pool's standard deviation of a single row is 0 (not NaN): the scores stay finite and sum to one."""
    probs = graph_pseudo_labels(torch.randn(4, 6), torch.tensor([0, 1, 0, 1]), torch.randn(1, 6), 2)
    assert probs.shape == (1, 2) and torch.isfinite(probs).all() and torch.isclose(probs.sum(), torch.tensor(1.0))
