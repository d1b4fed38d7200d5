"""Few-shot classifiers on pretrained features.

The backbone stays frozen (a good pretrained embedding is most of few-shot performance,
Tian et al. 2020); meta-learners train a small network on top of its features with episodes
drawn from *base* classes, and are evaluated on episodes of disjoint *novel* classes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.fewshot.episodes import EpisodeSampler
from transferkit.registry import Registry


class FewShotMethod(nn.Module):
    """``predict(support, support_labels, query, way) -> logits (Q, way)``; ``meta_train`` on base classes."""

    name: str = ""
    episodic: bool = False  # True: meta_train learns something from base-class episodes

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = in_features

    def meta_train(self, sampler: EpisodeSampler, episodes: int, lr: float = 1e-3) -> list[float]:
        """Learn from base-class episodes; returns the loss per episode. Default: nothing to learn."""
        return []

    def predict(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        raise NotImplementedError


fewshot_methods: Registry[type[FewShotMethod]] = Registry("few-shot method")


def embedding_net(in_features: int, hidden: int = 512, out: int = 256) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out))


def prototypes(embedded: Tensor, labels: Tensor, way: int) -> Tensor:
    """(way, D) class means."""
    return torch.stack([embedded[labels == k].mean(0) for k in range(way)])


def episodic_loop(method: FewShotMethod, sampler: EpisodeSampler, episodes: int, lr: float, loss_fn) -> list[float]:
    """Adam over episodes; ``loss_fn(episode) -> loss``. Episodes are drawn with fresh indices."""
    optimizer = torch.optim.Adam(method.parameters(), lr=lr)
    losses = []
    method.train()
    for episode in sampler(episodes, start=1_000_000):  # disjoint from evaluation episode indices
        loss = loss_fn(episode)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    method.eval()
    return losses


def normalize(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1)
