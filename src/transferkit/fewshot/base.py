"""Few-shot classifiers on pretrained features.

The backbone stays frozen (a good pretrained embedding is most of few-shot performance,
Tian et al. 2020); meta-learners train a small network on top of its features with episodes
drawn from *base* classes, and are evaluated on episodes of disjoint *novel* classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.engine.distributed import local_fabric
from transferkit.engine.model import device_of
from transferkit.engine.trainer import StepOutput, Trainer, TrainingTask
from transferkit.fewshot.episodes import EpisodeSampler
from transferkit.heads.mlp import mlp
from transferkit.registry import Registry


class FewShotMethod(nn.Module, ABC):
    """``predict(support, support_labels, query, way) -> logits (Q, way)``; ``meta_train`` on base classes."""

    name: str = ""
    episodic: bool = False  # True: meta_train learns something from base-class episodes

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = in_features

    def meta_train(self, sampler: EpisodeSampler, episodes: int, lr: float = 1e-3) -> list[float]:
        """Learn from base-class episodes; returns the loss per episode. Default: nothing to learn."""
        return []

    @abstractmethod
    def predict(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        """(Q, way) logits of the query features given the labelled support features."""


fewshot_methods: Registry[type[FewShotMethod]] = Registry("few-shot method")


def embedding_net(in_features: int, hidden: int = 512, out: int = 256) -> nn.Sequential:
    return mlp(in_features, hidden, out)


def prototypes(embedded: Tensor, labels: Tensor, way: int) -> Tensor:
    """(way, D) class means."""
    return torch.stack([embedded[labels == k].mean(0) for k in range(way)])


class EpisodicTask(TrainingTask):
    """Meta-training as one epoch of ``episodes`` base-class episodes; ``loss_fn(episode)`` per step.

    ``loss_fn`` returns the episode's loss, or a :class:`StepOutput` whose ``loss`` is a surrogate
    with the wanted gradient (first-order MAML, Reptile) and whose ``report`` is the episode's loss.
    """

    name = "meta-train"

    def __init__(self, method: FewShotMethod, sampler: EpisodeSampler, episodes: int, loss_fn, optimizer) -> None:
        self.method, self.sampler, self.episodes = method, sampler, episodes
        self.loss_fn, self.make_optimizer = loss_fn, optimizer
        self.losses: list[float] = []

    def setup(self, trainer: Trainer) -> None:
        self.module, self.optimizer = trainer.setup(self.method, self.make_optimizer(self.method.parameters()))

    def batches(self, epoch: int):
        self.method.train()
        return self.sampler(self.episodes, start=1_000_000)  # disjoint from evaluation episode indices

    def training_step(self, episode) -> StepOutput:
        out = self.loss_fn(episode)
        out = out if isinstance(out, StepOutput) else StepOutput(out, 1)
        self.losses.append(float(out.loss.detach()) if out.report is None else out.report)
        return out

    def validate(self, epoch: int) -> dict[str, float]:
        return {}


def episodic_loop(
    method: FewShotMethod, sampler: EpisodeSampler, episodes: int, lr: float, loss_fn, optimizer=None
) -> list[float]:
    """Meta-train ``method`` on fresh episodes in the one training loop; returns the loss per episode.

    ``optimizer(params)``: default Adam at ``lr``.
    """
    make = optimizer or (lambda params: torch.optim.Adam(params, lr=lr))
    task = EpisodicTask(method, sampler, episodes, loss_fn, make)
    Trainer(local_fabric(device_of(method)), seed=sampler.seed, log=lambda _m: None).fit(task, epochs=1)
    method.eval()
    return task.losses


def normalize(x: Tensor) -> Tensor:
    return F.normalize(x, dim=-1)
