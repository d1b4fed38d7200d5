"""Relation networks (Sung et al., CVPR 2018): a learned relation module scores each
(class prototype, query) pair in [0, 1], trained with MSE against one-hot targets.

The paper's relation module convolves concatenated feature *maps*; on pooled feature
vectors an MLP fed only the concatenation collapses to the constant ``1/way`` (measured),
so the pair is given as ``[p, q, |p − q|, p ⊙ q]``."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.fewshot.base import (
    FewShotMethod,
    embedding_net,
    episodic_loop,
    fewshot_methods,
    normalize,
    prototypes,
)
from transferkit.fewshot.episodes import EpisodeSampler


@fewshot_methods.register("relation")
class RelationNet(FewShotMethod):
    name = "relation"
    episodic = True

    def __init__(
        self, in_features: int, hidden: int = 512, out: int = 256, relation_hidden: int = 128, scale: float = 10.0
    ) -> None:
        super().__init__(in_features)
        self.scale = scale
        self.embed = embedding_net(in_features, hidden, out)
        self.relation = nn.Sequential(
            nn.Linear(4 * out, relation_hidden), nn.ReLU(), nn.Linear(relation_hidden, 1), nn.Sigmoid()
        )

    def scores(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        # unit-norm inputs (× scale): at norm 1 the pair signal is too weak and the relation
        # module settles on the constant 1/way that minimises MSE
        protos = prototypes(self.embed(normalize(support) * self.scale), support_labels, way)  # (way, D)
        q = self.embed(normalize(query) * self.scale)  # (Q, D)
        p, q = protos.unsqueeze(0).expand(len(q), -1, -1), q.unsqueeze(1).expand(-1, way, -1)
        pairs = torch.cat([p, q, (p - q).abs(), p * q], dim=2)
        return self.relation(pairs).squeeze(2)  # (Q, way)

    def meta_train(self, sampler: EpisodeSampler, episodes: int, lr: float = 1e-3) -> list[float]:
        def loss(e):
            scores = self.scores(e.support, e.support_labels, e.query, sampler.way)
            return F.mse_loss(scores, F.one_hot(e.query_labels, sampler.way).float())

        return episodic_loop(self, sampler, episodes, lr, loss)

    def predict(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        return self.scores(support, support_labels, query, way)
