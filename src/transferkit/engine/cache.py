"""Outputs of the frozen part of a network, computed once per dataset (and per augmented view).

While every backbone parameter is frozen the features cannot change, so recomputing
them each epoch is wasted work: the head then trains on these tensors alone. Likewise,
while only the top groups train, the frozen bottom's feature maps are cached and only
the top runs each epoch (see :meth:`ModelBackbone.split`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from lightning_fabric import Fabric
from torch import Tensor, nn
from torch.utils.data import Dataset

from transferkit.engine.config import autocast_for
from transferkit.engine.model import TransferModel, device_of
from transferkit.errors import ConfigError

if TYPE_CHECKING:
    from transferkit.engine.feature_store import FeatureStore


def rng_digest() -> str:
    """SHA-256 of torch's CPU random state: what a random view's augmentations are drawn from."""
    import hashlib

    return hashlib.sha256(torch.random.get_rng_state().numpy().tobytes()).hexdigest()


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
    sink: Callable[[Tensor, Tensor], None] | None = None,
) -> tuple[Tensor, Tensor] | None:
    """(features (N, D) float32, labels (N,)) of ``dataset`` under ``inference_mode``: the one feature extractor.

    With ``split=k``: the outputs of the backbone's first ``k`` layer groups instead; with ``layer``:
    the pooled output of that module (see :func:`features_at`). ``autocast_dtype`` (e.g. bf16) speeds
    up the frozen forward; results are stored as float32. Under DDP each process runs a shard.
    With ``sink`` (one process only), each batch's (features, labels) goes to it in order instead,
    nothing is kept, and ``None`` is returned: for writing caches larger than RAM.
    """
    from transferkit.engine.distributed import map_batches, ordered_map

    was_training = backbone.training
    backbone.eval()
    if channels_last:  # weights too: channels-last inputs into NCHW weights ran 15 % slower (measured)
        backbone.to(memory_format=torch.channels_last)
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
        if sink is None:
            return ordered_map(fabric, dataset, run, batch_size, num_workers, desc, timing)
        if fabric.world_size > 1:
            raise ValueError("extract_features(sink=...) runs on one process; under DDP use its return value")
        for outputs, labels in map_batches(fabric, dataset, run, batch_size, num_workers, desc, timing):
            sink(outputs, labels)
        return None
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
    split: int | None = None,
) -> tuple[Tensor, Tensor]:
    """(features (N, D) float32, labels (N,)) of a labelled dataset, in order, on one process.

    ``split=k``: the outputs of the backbone's first ``k`` layer groups instead (feature maps).

    :func:`extract_features` on the backbone's device, with ``channels_last``. ``precision="auto"``
    uses bf16 autocast where the hardware runs it natively (about 2× faster on such CPUs; see
    :func:`transferkit.engine.config.frozen_autocast_dtype`), ``"32-true"`` keeps fp32.
    """
    from transferkit.engine.config import frozen_autocast_dtype
    from transferkit.engine.distributed import local_fabric

    device = device_of(backbone)
    dtype = frozen_autocast_dtype(precision, device)
    return extract_features(
        local_fabric(device), backbone, dataset, batch_size, num_workers, True, None, split,
        autocast_dtype=dtype, layer=layer,
    )  # fmt: skip


class FeatureCache:
    """Lazily computed outputs of the frozen part for the train views and the validation set.

    ``split=None`` caches the backbone's pooled features; ``split=k`` the outputs of its
    first ``k`` layer groups. Asking for another ``split`` drops the previous one's tensors.

    Args:
        views: Datasets of training images; epoch ``e`` uses view ``e % len(views)``.
        val: Validation dataset (eval transform).
        store: Where entries are kept between runs (``--cache-dir``); ``None``: in memory only.
            With a store, each entry is written to disk batch by batch and read back in RAM, or
            memory-mapped when :attr:`memory_mapped` is set (a cache larger than ``cache_max_gb``).
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
        store: FeatureStore | None = None,
    ) -> None:
        self.fabric = fabric
        self.store = store
        self.memory_mapped = False
        self.reused_images = 0
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

    def _extract(self, dataset: Dataset, desc: str, sink: Callable[[Tensor, Tensor], None] | None = None):
        start = time.perf_counter()
        result = extract_features(
            self.fabric,
            self.backbone,
            dataset,
            desc=desc if self.progress else None,
            split=self._split,
            autocast_dtype=self.autocast_dtype,
            timing=self.timing,
            sink=sink,
            **self.kwargs,
        )
        self.seconds += time.perf_counter() - start
        self.images += len(dataset)
        return result

    def _compute(self, dataset: Dataset, desc: str) -> tuple[Tensor, Tensor]:
        parts = self.key_parts(dataset) if self.store is not None else None
        if parts is None:
            return self._extract(dataset, desc)
        found = self.store.load(parts, self.memory_mapped)
        if found is None and self.fabric.world_size == 1:  # streamed to disk: RAM stays bounded
            writer = self.store.writer(parts, len(dataset))
            try:
                self._extract(dataset, desc, sink=writer.add)
            except BaseException:
                writer.abort()
                raise
            writer.commit()
            found = self.store.load(parts, self.memory_mapped)
        elif found is None:  # every process has the gathered result; rank 0 writes it
            found = self._extract(dataset, desc)
            if self.fabric.is_global_zero:
                self.store.save(parts, *found)
            self.fabric.barrier()
        else:
            self.reused_images += len(dataset)
        return found

    def key_parts(self, dataset: Dataset) -> dict[str, Any] | None:
        """What the cached outputs of ``dataset`` depend on (``None``: unknown dataset kind, not cached on disk)."""
        import timm

        from transferkit import __version__
        from transferkit.data.fingerprint import fingerprint, is_random
        from transferkit.engine.feature_store import FORMAT, weights_digest

        data = fingerprint(dataset)
        if data is None:
            return None
        encoder = self.backbone if self._split is None else self.backbone.split(self._split).bottom
        random = is_random(dataset)  # then the view's RNG state (seeded per view) decides the outputs
        return {
            "format": FORMAT,
            "versions": [__version__, torch.__version__, timm.__version__],
            "encoder": [getattr(self.backbone, "name", ""), type(self.backbone).__name__, self._split],
            "weights": weights_digest(encoder),
            "computes": self._probe_digest(),  # what it outputs: wrappers of the same weights differ here
            "data": data,
            "rows": len(dataset),
            "rng": rng_digest() if random else None,
            "workers": self.kwargs["num_workers"] if random else None,
            "compute": [str(self.autocast_dtype), self.kwargs["channels_last"], self.kwargs["batch_size"]],
            "device": self.fabric.device.type,
        }

    def _frozen_output(self, image: Tensor, split: int | None) -> Tensor:
        """The frozen part's output (pooled features, or the first ``split`` groups' maps) on ``image``, in eval."""
        encode = self.backbone.forward_features if split is None else self.backbone.split(split).bottom
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            with torch.inference_mode():
                return encode(image.to(self.fabric.device))
        finally:
            self.backbone.train(was_training)

    def _probe_digest(self) -> str:
        """SHA-256 of the encoder's output on a fixed random image (fp32, eval, rounded to fp16).

        The same weights can compute different features (a multi-depth view pooling other layers, a
        ``layer`` tap, custom code): this tells them apart. The global random state is not touched.
        """
        import hashlib

        size = self.backbone.data_config.input_size
        image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        out = self._frozen_output(image, self._split).float().half().cpu()
        return hashlib.sha256(f"{tuple(out.shape)}".encode() + out.numpy().tobytes()).hexdigest()

    def bytes_needed(self, split: int | None) -> int:
        """Memory the cached train views and validation set would take (feature maps: from one probe image)."""
        rows = sum(len(v) for v in self.views) + (len(self.val) if self.val is not None else 0)
        if split is None:
            return int(self.backbone.num_features) * 4 * rows
        return self._frozen_output(self.views[0][0][0].unsqueeze(0), split).numel() * 4 * rows  # stored as float32

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
