"""Prototypical networks (Snell et al., NeurIPS 2017): logits are minus squared Euclidean
distances from the embedded query to each class's mean embedded support (its prototype)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from transferkit.fewshot.base import FewShotMethod, embedding_net, episodic_loop, fewshot_methods, normalize, prototypes
from transferkit.fewshot.episodes import EpisodeSampler


@fewshot_methods.register("protonet")
class ProtoNet(FewShotMethod):
    name = "protonet"
    episodic = True

    def __init__(self, in_features: int, hidden: int = 512, out: int = 256) -> None:
        super().__init__(in_features)
        self.embed = embedding_net(in_features, hidden, out)

    def logits(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        s, q = self.embed(normalize(support)), self.embed(normalize(query))
        return -torch.cdist(q, prototypes(s, support_labels, way)).pow(2)

    def meta_train(self, sampler: EpisodeSampler, episodes: int, lr: float = 1e-3) -> list[float]:
        def loss(e):
            return F.cross_entropy(self.logits(e.support, e.support_labels, e.query, sampler.way), e.query_labels)

        return episodic_loop(self, sampler, episodes, lr, loss)

    def predict(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        return self.logits(support, support_labels, query, way)
