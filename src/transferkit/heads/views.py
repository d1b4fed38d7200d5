"""One MLP head per view of the features and one on all of them, their class probabilities averaged.

Co-training's ensemble (Blum & Mitchell, 1998): when the features are two views side by side — a
network's pooled groups and the input's HOG descriptor (``--layers ...,hog``) — a head on each view
and one on both err differently, and the mean of their softmaxes labels unlabelled images better
than the one head on both (self-training uses it for its pseudo-labels; see
:mod:`transferkit.semi.self_training`). The members are trained apart; this module only combines them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from transferkit.errors import ConfigError
from transferkit.heads.base import heads
from transferkit.heads.mlp import MLPHead


@heads.register("views")
class ViewsHead(nn.Module):
    """``log mean_k softmax(member_k(columns_k))``: a member per block of ``blocks`` columns, then one on all.

    Args:
        in_features: Width of the features; ``sum(blocks)``.
        num_classes: Classes.
        blocks: Widths of the views' column blocks, in the order of the columns.

    Shape:
        features: (N, in_features). Returns (N, num_classes) log-probabilities (softmax = the average).
    """

    def __init__(
        self, in_features: int, num_classes: int, blocks: Sequence[int], hidden: int = 512, dropout: float = 0.2
    ) -> None:
        super().__init__()
        self.blocks = [int(b) for b in blocks]
        if len(self.blocks) < 2 or sum(self.blocks) != in_features or min(self.blocks) < 1:
            raise ConfigError(
                f"A views head needs 2 or more positive column blocks summing to its {in_features} features, "
                f"got blocks={self.blocks}."
            )
        self.in_features, self.hidden, self.dropout = in_features, hidden, dropout
        widths = [*self.blocks, in_features]
        self.members = nn.ModuleList(MLPHead(w, num_classes, hidden, dropout) for w in widths)
        self.num_classes = num_classes

    def slices(self) -> list[slice]:
        """Each member's columns: the view blocks in order, then all of them."""
        edges = [0, *itertools.accumulate(self.blocks)]
        return [slice(a, b) for a, b in zip(edges, edges[1:])] + [slice(None)]

    def columns(self, features: Tensor) -> list[Tensor]:
        """Each member's input (see :meth:`slices`)."""
        return [features[:, which] for which in self.slices()]

    def embed(self, features: Tensor) -> Tensor:
        """Every member's hidden layer side by side (N, members × hidden)."""
        return torch.cat([m.embed(x) for m, x in zip(self.members, self.columns(features))], 1)

    def forward(self, features: Tensor) -> Tensor:
        probs = [m(x).float().softmax(1) for m, x in zip(self.members, self.columns(features))]
        return torch.stack(probs).mean(0).clamp_min(1e-12).log()

    def reset(self, num_classes: int) -> None:
        self.num_classes = num_classes
        for member in self.members:
            member.reset(num_classes)
