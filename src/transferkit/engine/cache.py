"""Features of a frozen backbone, computed once per dataset (and per augmented view).

While every backbone parameter is frozen the features cannot change, so recomputing
them each epoch is wasted work: the head then trains on these tensors alone.
"""

from __future__ import annotations

import time

import torch
from lightning_fabric import Fabric
from torch import Tensor, nn
from torch.utils.data import Dataset


def extract_features(
    fabric: Fabric,
    backbone: nn.Module,
    dataset: Dataset,
    batch_size: int,
    num_workers: int = 0,
    channels_last: bool = True,
    desc: str | None = "features",
) -> tuple[Tensor, Tensor]:
    """(features (N, D), labels (N,)) of ``dataset`` under ``inference_mode`` and the run's autocast."""
    from transferkit.engine.distributed import ordered_map

    was_training = backbone.training
    backbone.eval()

    def run(images: Tensor) -> Tensor:
        if channels_last and images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), fabric.autocast():
            return backbone.forward_features(images)

    try:
        return ordered_map(fabric, dataset, run, batch_size, num_workers, desc)
    finally:
        backbone.train(was_training)


class FeatureCache:
    """Lazily computed features of the train views and the validation set.

    Args:
        views: Datasets of training images; epoch ``e`` uses view ``e % len(views)``.
        val: Validation dataset (eval transform).
    """

    def __init__(
        self,
        fabric: Fabric,
        backbone: nn.Module,
        views: list[Dataset],
        val: Dataset | None,
        batch_size: int,
        num_workers: int,
        channels_last: bool,
        progress: bool = True,
    ) -> None:
        self.fabric = fabric
        self.backbone = backbone
        self.views = views
        self.val = val
        self.progress = progress
        self.kwargs = {"batch_size": batch_size, "num_workers": num_workers, "channels_last": channels_last}
        self._train: dict[int, tuple[Tensor, Tensor]] = {}
        self._val: tuple[Tensor, Tensor] | None = None
        self.seconds = 0.0
        self.images = 0

    def _compute(self, dataset: Dataset, desc: str) -> tuple[Tensor, Tensor]:
        start = time.perf_counter()
        result = extract_features(
            self.fabric, self.backbone, dataset, desc=desc if self.progress else None, **self.kwargs
        )
        self.seconds += time.perf_counter() - start
        self.images += len(dataset)
        return result

    def train(self, epoch: int) -> tuple[Tensor, Tensor]:
        view = epoch % len(self.views)
        if view not in self._train:
            self._train[view] = self._compute(self.views[view], f"caching train view {view}")
        return self._train[view]

    def validation(self) -> tuple[Tensor, Tensor]:
        assert self.val is not None
        if self._val is None:
            self._val = self._compute(self.val, "caching val")
        return self._val
