"""Fine-tune baseline (Chen et al., ICLR 2019, "Baseline"): a new linear classifier trained on
each episode's support features (L2-normalised), the backbone frozen. No meta-training."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.fewshot.base import FewShotMethod, fewshot_methods, normalize


@fewshot_methods.register("finetune")
class FineTuneBaseline(FewShotMethod):
    name = "finetune"

    def __init__(self, in_features: int, steps: int = 100, lr: float = 0.1, scale: float = 10.0) -> None:
        super().__init__(in_features)
        self.steps, self.lr, self.scale = steps, lr, scale

    def predict(self, support: Tensor, support_labels: Tensor, query: Tensor, way: int) -> Tensor:
        with torch.enable_grad():
            head = nn.Linear(self.in_features, way)
            optimizer = torch.optim.SGD(head.parameters(), lr=self.lr, momentum=0.9, weight_decay=1e-3)
            s = normalize(support) * self.scale
            for _ in range(self.steps):
                loss = F.cross_entropy(head(s), support_labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return head(normalize(query) * self.scale)
