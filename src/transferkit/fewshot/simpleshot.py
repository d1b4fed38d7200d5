"""SimpleShot (Wang et al., 2019): nearest class centroid on pretrained features after
centering by the base-class mean and L2 normalisation (CL2N). No training."""

from __future__ import annotations

import torch
from torch import Tensor

from transferkit.fewshot.base import FewShotMethod, fewshot_methods, normalize, prototypes
from transferkit.fewshot.episodes import EpisodeSampler


@fewshot_methods.register("simpleshot")
class SimpleShot(FewShotMethod):
    name = "simpleshot"

    def __init__(self, in_features: int) -> None:
        super().__init__(in_features)
        self.register_buffer("base_mean", torch.zeros(in_features))

    def meta_train(self, sampler: EpisodeSampler, episodes: int, lr: float = 1e-3) -> list[float]:
        self.base_mean = sampler.features.mean(0)  # the only statistic SimpleShot takes from base classes
        return []

    def predict(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        s, q = normalize(support - self.base_mean), normalize(query - self.base_mean)
        return -torch.cdist(q, prototypes(s, support_labels, way))
