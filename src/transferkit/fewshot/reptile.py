"""Reptile (Nichol et al., 2018): meta-learn the initialisation of MAML's network (``maml.py``)
without second derivatives, by moving it towards each episode's adapted parameters."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from transferkit.engine.trainer import StepOutput
from transferkit.fewshot.base import episodic_loop, fewshot_methods
from transferkit.fewshot.episodes import EpisodeSampler
from transferkit.fewshot.maml import _MetaInit


@fewshot_methods.register("reptile")
class Reptile(_MetaInit):
    """Reptile: move the initialisation towards the parameters adapted to each episode,
    ``θ ← θ + ε (φ - θ)``, with ``ε`` = ``lr`` × 100 annealed linearly to 0.

    In the training loop the move is one SGD step (rate 1) on the surrogate ``ε/2 · ‖θ − φ‖²``,
    whose gradient ``ε (θ − φ)`` makes exactly that update.
    """

    name = "reptile"

    def meta_train(self, sampler: EpisodeSampler, episodes: int, lr: float = 1e-3) -> list[float]:
        start_eps, done = min(1.0, lr * 100), [0]

        def step(episode) -> StepOutput:
            both = torch.cat([episode.support, episode.query])
            labels = torch.cat([episode.support_labels, episode.query_labels])
            adapted = self.adapt(both, labels)
            eps = start_eps * (1 - done[0] / max(episodes, 1))
            done[0] += 1
            with torch.no_grad():
                report = float(F.cross_entropy(self.query_logits(adapted, episode.query), episode.query_labels))
            surrogate = sum((p - adapted[n].detach()).pow(2).sum() for n, p in self.net.named_parameters())
            return StepOutput(eps / 2 * surrogate, 1, report=report)

        return episodic_loop(
            self, sampler, episodes, lr, step, optimizer=lambda params: torch.optim.SGD(params, lr=1.0)
        )
