"""Matching networks (Vinyals et al., NeurIPS 2016), without full-context embeddings: the
query's class distribution is the softmax attention over cosine similarities to each
embedded support example, summed per class."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from transferkit.fewshot.base import FewShotMethod, embedding_net, episodic_loop, fewshot_methods, normalize
from transferkit.fewshot.episodes import EpisodeSampler


@fewshot_methods.register("matching")
class MatchingNet(FewShotMethod):
    name = "matching"
    episodic = True

    def __init__(self, in_features: int, hidden: int = 512, out: int = 256, temperature: float = 10.0) -> None:
        super().__init__(in_features)
        self.embed = embedding_net(in_features, hidden, out)
        self.temperature = temperature

    def log_probs(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        s = normalize(self.embed(normalize(support)))
        q = normalize(self.embed(normalize(query)))
        attention = (self.temperature * q @ s.T).softmax(1)  # (Q, S)
        probs = attention @ F.one_hot(support_labels, way).float()  # (Q, way)
        return torch.log(probs.clamp_min(1e-8))

    def meta_train(self, sampler: EpisodeSampler, episodes: int, lr: float = 1e-3) -> list[float]:
        def loss(e):
            return F.nll_loss(self.log_probs(e.support, e.support_labels, e.query, sampler.way), e.query_labels)

        return episodic_loop(self, sampler, episodes, lr, loss)

    def predict(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        return self.log_probs(support, support_labels, query, way)
