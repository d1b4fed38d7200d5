"""Pooled features from several depths of one network, side by side.

For data far from ImageNet (grayscale, tiny, textures, micrographs) the middle layers often
transfer better than the last one (Yosinski et al., 2014): a linear probe on pooled
outputs of several layer groups beats one on the final features. The view shares the
network, its weights and its layer groups with the backbone it wraps, so checkpoints,
freezing and the feature cache work unchanged.

Beside the groups, ``hog`` adds a classical view of the *input*: its HOG descriptor (the
``classical:hog`` baseline's: the image in [0, 1] at 64 px, 8-px cells). Blum & Mitchell's second
view: edges and silhouettes that ImageNet features of a small grayscale image blur. ``--layers auto``
adds it only where cross-validation on the training images says it helps (see
:func:`transferkit.strategies.layer_selection.select_layers`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.backbones.base import ModelBackbone
from transferkit.backbones.classical import HogFeatures
from transferkit.errors import ConfigError

LAST = "last"
HOG = "hog"  # not a layer group: the input's HOG descriptor, after the pooled groups
HOG_SIZE = 64  # the classical:hog baseline's input size
HOG_SCALE = 30.0  # L2-Hys HOG values lie in [0, 0.2]; ×30 brings them near pooled CNN features' scale


class HogView(nn.Module):
    """Normalised images (N, 3, S, S) → HOG descriptors (N, D) of the images in [0, 1] at 64 px, × ``HOG_SCALE``.

    ``mean``/``std``: the normalisation the images went through (undone first). NumPy inside:
    no gradient flows through it and it cannot be exported (``export`` says so).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.mean, self.std = tuple(mean), tuple(std)
        self.hog = HogFeatures()

    def forward(self, images: Tensor) -> Tensor:
        shape = (1, -1, 1, 1)
        x = images.detach().float()
        raw = x * x.new_tensor(self.std).view(shape) + x.new_tensor(self.mean).view(shape)
        if raw.shape[-1] != HOG_SIZE or raw.shape[-2] != HOG_SIZE:
            raw = F.interpolate(raw, size=HOG_SIZE, mode="bilinear", antialias=True, align_corners=False)
        return self.hog(raw.clamp(0, 1)) * HOG_SCALE


def pool(output: Tensor) -> Tensor:
    """(N, C, H, W) maps → spatial mean; (N, T, C) tokens → token mean; (N, C) unchanged."""
    if output.ndim == 4:
        return output.mean(dim=(2, 3))
    if output.ndim == 3:
        return output.mean(dim=1)
    return output.flatten(1)


def group_output_module(model: nn.Module, group: Sequence[str], last: str) -> str:
    """Path of the module whose output is the group's output: the largest module holding only its parameters."""
    owned = set(group)
    path = last.rpartition(".")[0]
    best = path
    while path:
        parent = path.rpartition(".")[0]
        module = model.get_submodule(path)
        if not {f"{path}.{n}" for n, _ in module.named_parameters()} <= owned:
            break
        best, path = path, parent
    return best


def group_names(backbone: ModelBackbone) -> list[str]:
    return [name for name, _ in backbone._groups]


def resolve_layers(backbone: ModelBackbone, layers: str | Sequence[str]) -> list[str]:
    """Group names from ``"last"``, ``"NAME,NAME"`` or a list; ``"last"`` is the deepest group.

    Raises:
        ConfigError: naming the unknown layer and listing the valid names.
    """
    names = group_names(backbone)
    items = [s.strip() for s in layers.split(",")] if isinstance(layers, str) else list(layers)
    chosen = []
    for item in filter(None, items):
        name = names[-1] if item == LAST else item
        if name not in names and name != HOG:
            raise ConfigError(
                f"No layer group {item!r} in {backbone.name}. Valid --layers: auto, last, or comma-separated "
                f"names among: {', '.join(names)} (and {HOG}, the input's HOG descriptor, beside them)."
            )
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise ConfigError(f"--layers is empty. Use auto, last, or names among: {', '.join(names)}.")
    if chosen == [HOG]:
        raise ConfigError(
            f"--layers {HOG} adds HOG descriptors beside layer groups; name a group too (e.g. last,{HOG}), "
            "or use --backbone classical:hog for HOG alone."
        )
    return sorted(chosen, key=lambda n: names.index(n) if n in names else len(names))


def layer_blocks(backbone: MultiDepthBackbone, features: Tensor) -> dict[str, Tensor]:
    """Each chosen group's columns of ``backbone``'s concatenated features (N, D), by group name."""
    return dict(zip(backbone.layers, features.split(backbone.widths(), dim=1)))


def pick_layers(backbone: MultiDepthBackbone, features: Tensor, layers: Sequence[str]) -> Tensor:
    """The columns of ``layers`` (a subset of ``backbone.layers``, in their order) of its features (N, D)."""
    blocks = layer_blocks(backbone, features)
    return torch.cat([blocks[name] for name in layers], dim=1)


class MultiDepthBackbone(ModelBackbone):
    """``backbone`` whose features are the pooled outputs of ``layers`` (group names), concatenated shallow → deep.

    The deepest group's output is the backbone's own pooled features; earlier groups are read
    with forward hooks and mean-pooled (:func:`pool`).
    """

    def __init__(self, backbone: ModelBackbone, layers: Sequence[str]) -> None:
        names = group_names(backbone)
        chosen = resolve_layers(backbone, layers)
        self_groups = backbone._groups
        taps = [
            group_output_module(backbone.model, params, params[-1])
            for name, params in self_groups
            if name in chosen and name != names[-1]
        ]
        super().__init__(backbone.name, backbone.model, 0, backbone.data_config, self_groups)
        self.layers = chosen
        self.taps = taps
        self.deepest = names[-1] in chosen
        dc = backbone.data_config
        self.hog = HogView(dc.mean, dc.std) if HOG in chosen else None
        self.num_features = sum(self.widths())

    def widths(self) -> list[int]:
        """Width of each chosen layer's pooled features (measured on one probe image)."""
        if "_widths" not in self.__dict__:
            size = self.data_config.input_size
            param = next(self.model.parameters())
            was_training = self.model.training
            self.model.eval()
            try:
                with torch.no_grad():
                    parts = self._parts(torch.zeros(1, 3, size, size, device=param.device, dtype=param.dtype))
            finally:
                self.model.train(was_training)
            self.__dict__["_widths"] = [p.shape[1] for p in parts]
        return self.__dict__["_widths"]

    def _parts(self, images: Tensor) -> list[Tensor]:
        captured: dict[str, Tensor] = {}
        handles = [
            self.model.get_submodule(path).register_forward_hook(
                lambda _m, _i, out, path=path: captured.__setitem__(path, out[0] if isinstance(out, tuple) else out)
            )
            for path in self.taps
        ]
        try:
            final = self.model(images)
        finally:
            for handle in handles:
                handle.remove()
        parts = [pool(captured[path]) for path in self.taps]
        if self.deepest:
            parts.append(final)
        if self.hog is not None:
            parts.append(self.hog(images))  # float32: cat promotes bf16 group outputs
        return parts

    def forward_features(self, images: Tensor) -> Tensor:
        return torch.cat(self._parts(images), dim=1)

    def forward(self, images: Tensor) -> Tensor:
        return self.forward_features(images)

    def split(self, index: int) -> None:
        """No cut: the features need outputs from below any cut point."""
        return None
