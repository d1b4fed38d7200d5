"""Outputs of the frozen part of a network, computed once per dataset (and per augmented view).

While every backbone parameter is frozen the features cannot change, so recomputing
them each epoch is wasted work: the head then trains on these tensors alone. Likewise,
while only the top groups train, the frozen bottom's feature maps are cached and only
the top runs each epoch (see :meth:`ModelBackbone.split`).
"""

from __future__ import annotations

import time

import torch
from lightning_fabric import Fabric
from torch import Tensor, nn
from torch.utils.data import Dataset

from transferkit.engine.config import autocast_for
from transferkit.engine.model import TransferModel, device_of
from transferkit.errors import ConfigError


def extract_features(
    fabric: Fabric,
    backbone: nn.Module,
    dataset: Dataset,
    batch_size: int,
    num_workers: int = 0,
    channels_last: bool = True,
    desc: str | None = "features",
    split: int | None = None,
    autocast_dtype: torch.dtype | None = None,
    layer: str | None = None,
    timing: dict[str, float] | None = None,
) -> tuple[Tensor, Tensor]:
    """(features (N, D) float32, labels (N,)) of ``dataset`` under ``inference_mode``: the one feature extractor.

    With ``split=k``: the outputs of the backbone's first ``k`` layer groups instead; with ``layer``:
    the pooled output of that module (see :func:`features_at`). ``autocast_dtype`` (e.g. bf16) speeds
    up the frozen forward; results are stored as float32. Under DDP each process runs a shard.
    """
    from transferkit.engine.distributed import ordered_map

    was_training = backbone.training
    backbone.eval()
    if layer is not None:
        encode = lambda images: features_at(backbone, images, layer)  # noqa: E731
    else:
        encode = backbone.forward_features if split is None else backbone.split(split).bottom

    def run(images: Tensor) -> Tensor:
        if channels_last and images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast_for(fabric.device, autocast_dtype):
            return encode(images).float().contiguous()

    try:
        return ordered_map(fabric, dataset, run, batch_size, num_workers, desc, timing)
    finally:
        backbone.train(was_training)


def _has(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


def features_at(model: nn.Module, images: Tensor, layer: str | None) -> Tensor:
    """Pooled output of ``layer`` (a module path such as ``"model.layer3"``; ``None``: the backbone's features).

    Spatial maps (N, C, H, W) are averaged over H, W; token sequences (N, T, C) over T.
    """
    backbone = model.backbone if isinstance(model, TransferModel) else model
    if layer is None:
        return backbone.forward_features(images)
    try:
        inner = getattr(backbone, "model", backbone)  # "layer3" means the network's layer3
        target = inner.get_submodule(layer) if _has(inner, layer) else backbone.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in backbone.named_modules() if n and n.count(".") <= 2][:40]
        raise ConfigError(
            f"No layer {layer!r} in {getattr(backbone, 'name', 'the backbone')}. Some layers: {names}."
        ) from None
    captured: list[Tensor] = []
    handle = target.register_forward_hook(
        lambda _m, _i, out: captured.append(out[0] if isinstance(out, tuple) else out)
    )
    try:
        backbone.forward_features(images)
    finally:
        handle.remove()
    out = captured[0]
    if out.ndim == 4:
        return out.mean(dim=(2, 3))
    if out.ndim == 3:
        return out.mean(dim=1)
    return out.flatten(1)


def dataset_features(
    backbone: nn.Module,
    dataset: Dataset,
    batch_size: int = 64,
    layer: str | None = None,
    num_workers: int = 0,
    precision: str = "auto",
) -> tuple[Tensor, Tensor]:
    """(features (N, D) float32, labels (N,)) of a labelled dataset, in order, on one process.

    :func:`extract_features` on the backbone's device, with ``channels_last``. ``precision="auto"``
    uses bf16 autocast where the hardware runs it natively (about 2× faster on such CPUs; see
    :func:`transferkit.engine.config.frozen_autocast_dtype`), ``"32-true"`` keeps fp32.
    """
    from transferkit.engine.config import frozen_autocast_dtype
    from transferkit.engine.distributed import local_fabric

    device = device_of(backbone)
    dtype = frozen_autocast_dtype(precision, device)
    return extract_features(
        local_fabric(device), backbone, dataset, batch_size, num_workers, True, None, autocast_dtype=dtype, layer=layer
    )


class FeatureCache:
    """Lazily computed outputs of the frozen part for the train views and the validation set.

    ``split=None`` caches the backbone's pooled features; ``split=k`` the outputs of its
    first ``k`` layer groups. Asking for another ``split`` drops the previous one's tensors.

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
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.fabric = fabric
        self.autocast_dtype = autocast_dtype
        self.backbone = backbone
        self.views = views
        self.val = val
        self.progress = progress
        self.kwargs = {"batch_size": batch_size, "num_workers": num_workers, "channels_last": channels_last}
        self._split: int | None = None
        self._train: dict[int, tuple[Tensor, Tensor]] = {}
        self._val: tuple[Tensor, Tensor] | None = None
        self.seconds = 0.0
        self.images = 0
        self.timing: dict[str, float] = {"data_seconds": 0.0}  # waiting for images, within ``seconds``

    def _use(self, split: int | None) -> None:
        if split != self._split:
            self._split, self._train, self._val = split, {}, None

    def _compute(self, dataset: Dataset, desc: str) -> tuple[Tensor, Tensor]:
        start = time.perf_counter()
        result = extract_features(
            self.fabric,
            self.backbone,
            dataset,
            desc=desc if self.progress else None,
            split=self._split,
            autocast_dtype=self.autocast_dtype,
            timing=self.timing,
            **self.kwargs,
        )
        self.seconds += time.perf_counter() - start
        self.images += len(dataset)
        return result

    def bytes_needed(self, split: int | None) -> int:
        """Memory the cached train views and validation set would take (feature maps: from one probe image)."""
        rows = sum(len(v) for v in self.views) + (len(self.val) if self.val is not None else 0)
        if split is None:
            return int(self.backbone.num_features) * 4 * rows
        image = self.views[0][0][0].unsqueeze(0).to(self.fabric.device)
        was_training = self.backbone.training
        self.backbone.eval()
        encode = self.backbone.split(split).bottom
        try:
            with torch.inference_mode():
                out = encode(image)
        finally:
            self.backbone.train(was_training)
        return out.numel() * 4 * rows  # stored as float32

    def train(self, epoch: int, split: int | None = None) -> tuple[Tensor, Tensor]:
        self._use(split)
        view = epoch % len(self.views)
        if view not in self._train:
            self._train[view] = self._compute(self.views[view], f"caching train view {view}")
        return self._train[view]

    def validation(self, split: int | None = None) -> tuple[Tensor, Tensor]:
        assert self.val is not None
        self._use(split)
        if self._val is None:
            self._val = self._compute(self.val, "caching val")
        return self._val
