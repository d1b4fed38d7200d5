"""Unsupervised domain adaptation: labelled source images, unlabelled target images.

A method is an ``nn.Module`` (it may own a domain discriminator) whose ``forward`` returns the
adaptation loss added to the source classification loss. Features are the bottleneck
(the MLP head's body, as in DAN/DANN/CDAN), logits the classifier's output.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn

from transferkit.registry import Registry


class AdaptationMethod(nn.Module, ABC):
    """Base: ``forward(f_s, f_t, logits_s, logits_t, progress) -> loss``; ``progress`` runs 0 → 1."""

    name: str = ""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.num_classes = num_classes

    @abstractmethod
    def forward(self, f_s: Tensor, f_t: Tensor, logits_s: Tensor, logits_t: Tensor, progress: float) -> Tensor:
        """The adaptation loss of a source batch and a target batch (features and logits)."""


adaptation_methods: Registry[type[AdaptationMethod]] = Registry("domain adaptation method")


def domain_discriminator(features: int, hidden: int = 256) -> nn.Sequential:
    """The 3-layer discriminator of DANN/CDAN: one logit, source = 1, target = 0."""
    return nn.Sequential(
        nn.Linear(features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, 1),
    )
