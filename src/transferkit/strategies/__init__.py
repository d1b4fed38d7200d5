"""Transfer strategies: which layer groups train, when, and at which learning rate."""

from transferkit.strategies import (  # noqa: F401  (registration)
    discriminative,
    feature_extraction,
    fine_tune,
    lp_ft,
    partial,
    peft,
    progressive,
)
from transferkit.strategies.base import Stage, Strategy, create_strategy, strategies
from transferkit.strategies.freezing import apply_bn_policy, freeze, set_trainable, trainable_fraction, unfreeze
from transferkit.strategies.sklearn_probe import fit_sklearn_head

__all__ = [
    "Stage",
    "Strategy",
    "apply_bn_policy",
    "create_strategy",
    "fit_sklearn_head",
    "freeze",
    "set_trainable",
    "strategies",
    "trainable_fraction",
    "unfreeze",
]
