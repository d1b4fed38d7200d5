"""Plain functions to freeze layer groups, usable without the engine.

Frozen-part policy: a frozen group runs in eval mode, as in inference and as the feature
cache computes it — BatchNorm keeps the running statistics of pretraining (small or shifted
target batches make them noisy), dropout and drop-path are off, so a frozen part gives the
same outputs whether it is cached or recomputed every step. ``train_bn=True`` lets frozen
BatchNorm layers keep updating their statistics (dropout stays off).
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


def apply_bn_policy(groups: Sequence[LayerGroup], train_bn: bool = False, network: nn.Module | None = None) -> None:
    """Call after every ``model.train()``: frozen groups go to eval mode (BatchNorm layers stay in train
    mode with ``train_bn``). With nothing in ``network`` trainable, all of it does (parameter-free
    layers outside the groups too, e.g. a classifier's dropout); PEFT modules that train stay in train mode."""
    frozen = [g for g in groups if not any(p.requires_grad for p in g.parameters())]
    if network is not None and not any(p.requires_grad for p in network.parameters()):
        network.eval()
    for group in frozen:
        for module in group.subtrees():
            module.eval()
        if train_bn:
            for bn in group.batchnorms():
                bn.train()


def trainable_fraction(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total
