"""Two-layer MLP head: more capacity when the frozen features are far from the task."""

from __future__ import annotations

from torch import Tensor, nn

from transferkit.heads.base import heads


@heads.register("mlp")
class MLPHead(nn.Module):
    """``Linear → BatchNorm → ReLU → Dropout → Linear``.

    Shape:
        features: (N, in_features). Returns (N, num_classes).
    """

    def __init__(self, in_features: int, num_classes: int, hidden: int = 512, dropout: float = 0.2) -> None:
        super().__init__()
        self.in_features = in_features
        self.hidden = hidden
        self.body = nn.Sequential(
            nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.hidden, num_classes)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc(self.body(features))
