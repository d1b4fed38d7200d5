"""Linear head, with optional dropout in front (the usual transfer-learning head)."""

from __future__ import annotations

from torch import Tensor, nn

from transferkit.heads.base import heads


@heads.register("linear")
class LinearHead(nn.Module):
    """``Dropout(p) → Linear(in_features, num_classes)``.

    Shape:
        features: (N, in_features). Returns (N, num_classes).
    """

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.in_features, num_classes)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc(self.dropout(features))
