"""Two-layer MLP head: more capacity when the frozen features are far from the task."""

from __future__ import annotations

from torch import Tensor, nn

from transferkit.heads.base import heads


def mlp(
    in_features: int, hidden: int, out: int | None = None, batchnorm: bool = False, dropout: float | None = None
) -> nn.Sequential:
    """The one MLP builder: ``Linear → [BatchNorm] → ReLU → [Dropout]`` (→ ``Linear(out)`` when ``out`` is given).

    Used by the MLP head's body, the continual head, few-shot embeddings and MAML's network.
    """
    layers: list[nn.Module] = [nn.Linear(in_features, hidden)]
    layers += [nn.BatchNorm1d(hidden)] if batchnorm else []
    layers.append(nn.ReLU(inplace=True))
    layers += [nn.Dropout(dropout)] if dropout is not None else []
    layers += [nn.Linear(hidden, out)] if out is not None else []
    return nn.Sequential(*layers)


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
        self.body = mlp(in_features, hidden, batchnorm=True, dropout=dropout)
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.hidden, num_classes)

    def embed(self, features: Tensor) -> Tensor:
        """The hidden layer's output (N, hidden): what the classifier ``fc`` reads."""
        return self.body(features)

    def forward(self, features: Tensor) -> Tensor:
        return self.fc(self.body(features))
