"""Per-layer linear probes (Yosinski et al., 2014; Alain & Bengio, 2016): how linearly
separable the target classes are at each depth of the pretrained network. A curve that keeps
rising to the last layer says the deep features transfer (freeze them); one that peaks early
says later layers are too source-specific (fine-tune them, or cut the network there)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset


def group_output_layers(backbone: nn.Module) -> list[str]:
    """For each layer group, the module path (in ``backbone.model``) of its last parameterised module."""
    paths = []
    for group in backbone.layer_groups():
        last = group.param_names[-1].rpartition(".")[0]
        paths.append(last)
    return paths


def probe_layers(
    backbone: nn.Module, dataset: Dataset, layers: Sequence[str] | None = None, batch_size: int = 64, folds: int = 3
) -> list[tuple[str, float]]:
    """Cross-validated accuracy of the shared linear probe (``C = 0.5``) on pooled features at each layer
    (shallow → deep)."""
    from transferkit.engine.cache import features_at
    from transferkit.heads.probe import probe_accuracy

    layers = list(layers or group_output_layers(backbone))
    features: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    labels = []
    backbone.eval()
    with torch.inference_mode():
        for images, targets in torch.utils.data.DataLoader(dataset, batch_size=batch_size):
            for name in layers:
                features[name].append(features_at(backbone, images, name).float())
            labels.append(torch.as_tensor(targets))
    y = torch.cat(labels)
    return [(name, probe_accuracy(torch.cat(features[name]), y, C=0.5, folds=folds)) for name in layers]
