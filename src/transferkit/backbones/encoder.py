"""A backbone's weights and layer groups carried over to another network's copy of its encoder.

Dense-task libraries build their own encoder from the same timm architecture (segmentation-models-
pytorch's timm-universal encoder, a ``features_only`` model under a detection FPN): the same
parameter names, without the classifier. :func:`copy_weights` fills such an encoder from a
transferkit backbone (every encoder tensor must be covered) and :func:`groups_over` rebuilds the
backbone's layer groups over it, so freezing and per-group learning rates work unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import nn

from transferkit.backbones.base import DataConfig, LayerGroup, ModelBackbone
from transferkit.errors import ConfigError


def timm_name(source: ModelBackbone) -> str:
    if not source.name.startswith("timm:"):
        raise ConfigError(f"Dense-task encoders are timm models; {source.name} is not. Use e.g. efficientnet_lite0.")
    return source.name.split(":", 1)[1]


def copy_weights(source: ModelBackbone, encoder: nn.Module) -> None:
    """Copy the backbone network's tensors into ``encoder`` by name; every encoder tensor must be covered."""
    state = source.model.state_dict()
    wanted = encoder.state_dict()
    missing = [k for k in wanted if k not in state or state[k].shape != wanted[k].shape]
    if missing:
        raise ConfigError(f"The encoder of {source.name} has tensors its backbone does not: {missing[:5]}.")
    encoder.load_state_dict({k: state[k] for k in wanted})


def groups_over(source: ModelBackbone, encoder: nn.Module) -> list[tuple[str, list[str]]]:
    """The backbone's layer groups restricted to ``encoder``'s parameters (empty groups dropped)."""
    names = {n for n, _ in encoder.named_parameters()}
    groups = [(g, [n for n in group if n in names]) for g, group in source._groups]
    return [(g, group) for g, group in groups if group]


class EncoderModel(nn.Module, ABC):
    """A dense-task network around a backbone's encoder: its layer groups (over :attr:`encoder`), classes,
    the data config it trains at, and the ``spec`` its checkpoints rebuild it from."""

    def __init__(self, net: nn.Module, groups: list[tuple[str, list[str]]], spec: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        self._groups = groups
        self.classes: list[str] = list(spec["classes"])
        dc = spec["data_config"]
        self.data_config = DataConfig(dc["input_size"], tuple(dc["mean"]), tuple(dc["std"]), dc["interpolation"])
        self._spec = spec

    @property
    @abstractmethod
    def encoder(self) -> nn.Module:
        """The backbone's copy inside :attr:`net` (what the layer groups cover)."""

    def layer_groups(self) -> list[LayerGroup]:
        return [LayerGroup(name, self.encoder, names) for name, names in self._groups]

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)


def spec_for(task: str, source: ModelBackbone, arch: str, classes: list[str], dc: DataConfig) -> dict[str, Any]:
    """What a dense model's checkpoint records to rebuild it (weights come from the checkpoint)."""
    data_config = {"input_size": dc.input_size, "mean": list(dc.mean), "std": list(dc.std),
                   "interpolation": dc.interpolation}  # fmt: skip
    return {"task": task, "backbone": source.name, "arch": arch, "classes": classes, "data_config": data_config}
