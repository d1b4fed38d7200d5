"""EWC (Kirkpatrick et al., PNAS 2017): after each task, the diagonal Fisher information
``F_i = E[(∂ log p(y|x) / ∂θ_i)²]`` marks how much each weight matters; later tasks pay
``λ/2 Σ_i F_i (θ_i − θ*_i)²`` for moving it (online EWC: Fishers accumulate over tasks)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.continual.base import ContinualMethod, continual_methods
from transferkit.seeding import generator as seeded_generator


@continual_methods.register("ewc")
class EWC(ContinualMethod):
    name = "ewc"

    def __init__(self, lam: float = 100.0, samples: int = 512, seed: int = 0) -> None:
        self.lam, self.samples, self.seed = lam, samples, seed
        self.fisher: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}

    def penalty(self, model: nn.Module) -> Tensor | float:
        if not self.fisher:
            return 0.0
        total = 0.0
        for name, p in model.named_parameters():
            if name in self.fisher:
                total = total + (self.fisher[name] * (p - self.anchor[name]).pow(2)).sum()
        return 0.5 * self.lam * total

    def loss(self, model: nn.Module, x: Tensor, logits: Tensor) -> Tensor | float:
        return self.penalty(model)

    def after_task(self, model: nn.Module, x: Tensor, y: Tensor, task: int) -> None:
        """Empirical Fisher: squared per-sample gradients of the log-likelihood of the true label, over a
        seeded random sample of the whole task (its rows arrive sorted by class), with the logits the
        training loss used (class-incremental runs mask the classes not seen yet)."""
        fisher = {n: torch.zeros_like(p) for n, p in model.named_parameters() if p.requires_grad}
        model.eval()
        generator = seeded_generator(self.seed, task)
        rows = torch.randperm(len(x), generator=generator)[: self.samples].tolist()
        mask = self.logit_mask
        for i in rows:
            model.zero_grad(set_to_none=True)
            logits = model(x[i : i + 1])
            logits = logits + mask.to(logits.device) if mask is not None else logits
            F.cross_entropy(logits, y[i : i + 1]).backward()
            for name, p in model.named_parameters():
                if p.grad is not None:
                    fisher[name] += p.grad.detach().pow(2) / len(rows)
        model.zero_grad(set_to_none=True)
        for name, value in fisher.items():
            self.fisher[name] = self.fisher.get(name, torch.zeros_like(value)) + value
        self.anchor = {name: p.detach().clone() for name, p in model.named_parameters() if name in fisher}
