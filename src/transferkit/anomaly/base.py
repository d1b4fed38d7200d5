"""What an anomaly method is: a model of normal patch embeddings that scores new ones.

Methods see (N, C, H, W) embeddings of normal images (:class:`~transferkit.anomaly.features.PatchFeatures`)
and return an anomaly score per patch; :class:`~transferkit.anomaly.model.AnomalyModel` turns those into
image scores and full-size heatmaps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor

from transferkit.registry import Registry

ANOMALY_METHODS: Registry[type[AnomalyMethod]] = Registry("anomaly method")


class AnomalyMethod(ABC):
    """A model of normal patches. ``strides``: the backbone stages it reads, by their stride in pixels (the
    same on every architecture, unlike timm's stage indices); ``smooth``: 3×3 averaging."""

    name: str = ""
    strides: tuple[int, ...] = (8, 16)
    smooth: bool = True

    @abstractmethod
    def fit(self, embeddings: Tensor) -> None:
        """Learn from (N, C, H, W) embeddings of normal images."""

    @abstractmethod
    def patch_scores(self, embeddings: Tensor) -> Tensor:
        """(N, H, W) anomaly scores of (N, C, H, W) embeddings: higher is more anomalous."""

    @abstractmethod
    def state(self) -> dict[str, Tensor]:
        """The learned tensors (saved in the model file)."""

    @abstractmethod
    def load_state(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`state` returned."""
