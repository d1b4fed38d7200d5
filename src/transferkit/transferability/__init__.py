"""Rank backbones for a dataset without training: LogME, LEEP, NCE, H-score."""

from transferkit.transferability import hscore, leep, logme, nce  # noqa: F401  (registration)
from transferkit.transferability.base import score, scores
from transferkit.transferability.rank import BackboneScore, rank_backbones

__all__ = ["BackboneScore", "rank_backbones", "score", "scores"]
