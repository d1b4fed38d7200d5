"""The backbone contract and the pieces every adapter shares.

A backbone maps images to one pooled feature vector per image and knows its own
*layer groups*, ordered shallow → deep. Freezing, partial fine-tuning, progressive
unfreezing and discriminative learning rates all consume ``layer_groups()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

if TYPE_CHECKING:
    from transferkit.backbones.split import Split

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DataConfig:
    """How a backbone expects its input: square size, normalisation, resize filter."""

    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"


@runtime_checkable
class Backbone(Protocol):
    """What strategies, heads and the engine rely on."""

    name: str
    num_features: int
    data_config: DataConfig

    def forward_features(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) → (N, num_features)."""
        ...

    def layer_groups(self) -> list[LayerGroup]:
        """Groups of parameters, shallow → deep, covering every backbone parameter once."""
        ...


class LayerGroup(nn.Module):
    """A named set of a network's parameters, e.g. one ResNet stage.

    The parameters are shared with the network, not copied: ``requires_grad_`` on the
    group freezes them in the network. ``batchnorms()`` lists the normalisation layers
    whose affine parameters belong to the group, for the BatchNorm policy; ``subtrees()`` the
    largest modules holding only this group's parameters (with their parameter-free parts:
    dropout, drop-path), which a frozen group puts in eval mode.
    """

    def __init__(self, name: str, model: nn.Module, param_names: Sequence[str]) -> None:
        super().__init__()
        self.name = name
        self.param_names = tuple(param_names)
        owners: dict[int, nn.Module] = {}
        for pname in self.param_names:
            owner_path, _, attr = pname.rpartition(".")
            owner = model.get_submodule(owner_path) if owner_path else model
            self.register_parameter(pname.replace(".", "__"), getattr(owner, attr))
            owners.setdefault(id(owner), owner)
        # plain tuples, not registered: the modules stay children of the network only
        self._owners = tuple(owners.values())
        self._subtrees = tuple(_subtrees(model, set(self.param_names)))

    def batchnorms(self) -> Iterator[_BatchNorm]:
        return (m for m in self._owners if isinstance(m, _BatchNorm))

    def subtrees(self) -> tuple[nn.Module, ...]:
        return self._subtrees

    def extra_repr(self) -> str:
        return f"name={self.name!r}, params={sum(p.numel() for p in self.parameters()):,}"


def _subtrees(model: nn.Module, names: set[str]) -> list[nn.Module]:
    """The largest modules of ``model`` whose parameters (at least one) all are in ``names``."""
    found: list[str] = []
    modules = []
    for path, module in model.named_modules():
        if any(path == f or path.startswith(f + ".") for f in found):
            continue
        params = {f"{path}.{n}" if path else n for n, _ in module.named_parameters()}
        if params and params <= names:
            found.append(path)
            modules.append(module)
    return modules


class ModelBackbone(nn.Module):
    """A classification network whose classifier was removed, seen as a :class:`Backbone`.

    Args:
        name: Registry name, e.g. ``"timm:resnet18"``.
        model: The network; its forward must return pooled features (N, num_features).
        num_features: Width of the pooled features.
        data_config: Expected input size and normalisation.
        groups: Parameter names of each layer group, shallow → deep.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module,
        num_features: int,
        data_config: DataConfig,
        groups: Sequence[tuple[str, Sequence[str]]],
    ) -> None:
        super().__init__()
        self.name = name
        self.model = model
        self.num_features = num_features
        self.data_config = data_config
        self._groups = [(gname, tuple(names)) for gname, names in groups]
        covered = sorted(n for _, names in self._groups for n in names)
        expected = sorted(n for n, _ in model.named_parameters())
        assert covered == expected, "layer groups must cover every parameter exactly once"

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)

    def forward_features(self, images: Tensor) -> Tensor:
        return self.model(images)

    @property
    def source_head(self) -> nn.Module | None:
        """The pretrained classifier (e.g. ImageNet's 1000 classes) when the weights had one, else ``None``.

        Held outside the module tree: not trained, not in ``state_dict``, not in checkpoints.
        """
        return self.__dict__.get("_source_head")

    def set_source_head(self, head: nn.Module | None) -> None:
        self.__dict__["_source_head"] = head

    def layer_groups(self) -> list[LayerGroup]:
        return [LayerGroup(gname, self.model, names) for gname, names in self._groups]

    def split(self, index: int) -> Split | None:
        """The network cut after its first ``index`` layer groups, or ``None`` if it cannot be cut there.

        Verified numerically once per index (see :mod:`transferkit.backbones.split`).
        """
        from transferkit.backbones.split import find_split

        # a plain dict outside nn.Module's registries: the halves share modules with self.model
        splits = self.__dict__.setdefault("_splits", {})
        if index not in splits:
            groups = [names for _, names in self._groups]
            splits[index] = find_split(self.model, groups, index, self.data_config.input_size)
        return splits[index]


def group_name(param_names: Sequence[str]) -> str:
    """A readable name for a group: the module path its parameters share, e.g. ``"layer3"``."""
    paths = [n.rpartition(".")[0].split(".") for n in param_names]
    common: list[str] = []
    for parts in zip(*paths):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    if common:
        return ".".join(common)
    first, last = paths[0][:2], paths[-1][:2]
    return f"{'.'.join(first) or 'params'}..{'.'.join(last) or 'params'}"


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
