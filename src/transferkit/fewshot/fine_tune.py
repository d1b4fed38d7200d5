"""Fine-tune baseline (Chen et al., ICLR 2019, "Baseline"): a new linear classifier trained on
each episode's support features (L2-normalised), the backbone frozen. No meta-training.

Each episode's fit is a short run of the one training loop (``steps`` full-batch SGD steps)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.engine.distributed import local_fabric
from transferkit.engine.trainer import StepOutput, Trainer, TrainingTask
from transferkit.fewshot.base import FewShotMethod, fewshot_methods, normalize


@fewshot_methods.register("fine-tune")
class FineTuneBaseline(FewShotMethod):
    name = "fine-tune"

    def __init__(self, in_features: int, steps: int = 100, lr: float = 0.1, scale: float = 10.0) -> None:
        super().__init__(in_features)
        self.steps, self.lr, self.scale = steps, lr, scale
        self._trainer: Trainer | None = None  # one for every episode: a Fabric per episode is wasted set-up

    def predict(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        head = nn.Linear(self.in_features, way)
        task = _SupportFit(head, normalize(support) * self.scale, support_labels, self.steps, self.lr)
        if self._trainer is None:
            self._trainer = Trainer(local_fabric("cpu"), seed=None, log=lambda _m: None)
        with torch.enable_grad():
            self._trainer.fit(task, epochs=1)
        with torch.no_grad():
            return head(normalize(query) * self.scale)


class _SupportFit(TrainingTask):
    """A linear head fitted to one episode's support set by ``steps`` full-batch SGD steps."""

    name = "few-shot fine-tune"

    def __init__(self, head: nn.Linear, support: Tensor, labels: Tensor, steps: int, lr: float) -> None:
        self.head, self.support, self.labels, self.steps, self.lr = head, support, labels, steps, lr

    def setup(self, trainer: Trainer) -> None:
        optimizer = torch.optim.SGD(self.head.parameters(), lr=self.lr, momentum=0.9, weight_decay=1e-3)
        self.module, self.optimizer = trainer.setup(self.head, optimizer)

    def batches(self, epoch: int) -> list[tuple[Tensor, Tensor]]:
        return [(self.support, self.labels)] * self.steps

    def training_step(self, batch: tuple[Tensor, Tensor]) -> StepOutput:
        x, y = batch
        return StepOutput(F.cross_entropy(self.module(x), y), len(y))

    def validate(self, epoch: int) -> dict[str, float]:
        return {}
