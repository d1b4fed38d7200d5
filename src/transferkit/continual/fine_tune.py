"""Naive sequential fine-tuning: each task trained in turn with no protection of the old ones."""

from __future__ import annotations

from transferkit.continual.base import ContinualMethod, continual_methods


@continual_methods.register("fine-tune")
class NaiveFineTune(ContinualMethod):
    """Plain sequential training: the lower bound that shows catastrophic forgetting."""

    name = "fine-tune"
