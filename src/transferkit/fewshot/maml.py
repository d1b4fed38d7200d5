"""MAML (Finn et al., ICML 2017), first-order: meta-learn the *initialisation* of a small network
on pretrained features so that a few SGD steps on a new episode's support set give a good
classifier. ``_MetaInit`` (the network and its inner loop) is shared with Reptile (``reptile.py``).

The network is ``Linear → ReLU → Linear(way)``; its output units are shared across episodes
whose labels are freshly permuted, so the initialisation cannot memorise base classes.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import functional_call
from torch.nn import functional as F

from transferkit.engine.trainer import StepOutput
from transferkit.fewshot.base import FewShotMethod, episodic_loop, fewshot_methods, normalize
from transferkit.fewshot.episodes import EpisodeSampler
from transferkit.heads.mlp import mlp


class _MetaInit(FewShotMethod):
    episodic = True

    def __init__(
        self,
        in_features: int,
        hidden: int = 256,
        way: int = 5,
        inner_steps: int = 10,
        inner_lr: float = 0.1,
        scale: float = 10.0,
    ) -> None:
        super().__init__(in_features)
        self.net = mlp(in_features, hidden, way)
        self.way, self.inner_steps, self.inner_lr = way, inner_steps, inner_lr
        self.scale = scale

    def inputs(self, x: Tensor) -> Tensor:
        """L2-normalised features times ``scale``: unit-norm inputs make SGD steps too small to adapt."""
        return normalize(x) * self.scale

    def adapt(self, support: Tensor, support_labels: Tensor, steps: int | None = None) -> dict[str, Tensor]:
        """Parameters after ``steps`` SGD steps on the support set, starting from the meta-learned init."""
        params = {n: p.detach().clone().requires_grad_(True) for n, p in self.net.named_parameters()}
        x = self.inputs(support)
        with torch.enable_grad():
            for _ in range(self.inner_steps if steps is None else steps):
                loss = F.cross_entropy(functional_call(self.net, params, (x,)), support_labels)
                grads = torch.autograd.grad(loss, list(params.values()))
                params = {
                    n: (p - self.inner_lr * g).detach().requires_grad_(True) for (n, p), g in zip(params.items(), grads)
                }
        return params

    def query_logits(self, params: dict[str, Tensor], query: Tensor) -> Tensor:
        return functional_call(self.net, params, (self.inputs(query),))

    def predict(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        if way != self.way:
            raise ValueError(f"{self.name} was built for {self.way}-way episodes, got {way}-way.")
        params = self.adapt(support, support_labels)
        with torch.no_grad():
            return functional_call(self.net, params, (self.inputs(query),))


@fewshot_methods.register("maml")
class FOMAML(_MetaInit):
    """First-order MAML: the outer gradient is the query-loss gradient at the adapted parameters.

    In the training loop that gradient is delivered by the surrogate loss ``Σ θ · g`` (its gradient
    with respect to the initialisation ``θ`` is exactly ``g``), optimised by Adam.
    """

    name = "maml"

    def meta_train(self, sampler: EpisodeSampler, episodes: int, lr: float = 1e-3) -> list[float]:
        def step(episode) -> StepOutput:
            adapted = self.adapt(episode.support, episode.support_labels)
            with torch.enable_grad():
                loss = F.cross_entropy(self.query_logits(adapted, episode.query), episode.query_labels)
                grads = torch.autograd.grad(loss, list(adapted.values()))
            surrogate = sum((p * g.detach()).sum() for p, g in zip(self.net.parameters(), grads))
            return StepOutput(surrogate, 1, report=float(loss.detach()))

        return episodic_loop(self, sampler, episodes, lr, step)
