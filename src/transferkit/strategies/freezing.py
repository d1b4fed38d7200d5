"""Plain functions to freeze layer groups, usable without the engine.

BatchNorm policy: a frozen group's BatchNorm layers are put in eval mode so their
running statistics stay those of pretraining (small or shifted target batches make them
noisy); ``train_bn=True`` lets frozen BN layers keep updating their statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from transferkit.backbones.base import LayerGroup


def freeze(groups: Sequence[LayerGroup]) -> None:
    for group in groups:
        group.requires_grad_(False)


def unfreeze(groups: Sequence[LayerGroup]) -> None:
    for group in groups:
        group.requires_grad_(True)


def set_trainable(groups: Sequence[LayerGroup], num_trainable: int) -> None:
    """Unfreeze the deepest ``num_trainable`` groups, freeze the rest."""
    split = len(groups) - num_trainable
    freeze(groups[:split])
    unfreeze(groups[split:])


def apply_bn_policy(groups: Sequence[LayerGroup], train_bn: bool = False) -> None:
    """Call after every ``model.train()``: frozen groups' BatchNorms go to eval mode unless ``train_bn``."""
    if train_bn:
        return
    for group in groups:
        if not any(p.requires_grad for p in group.parameters()):
            for bn in group.batchnorms():
                bn.eval()


def trainable_fraction(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total
