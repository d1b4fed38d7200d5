"""PEFT: what each method promises (starts as the pretrained network, base weights untouched,
LoRA merged == unmerged), and that training, saving and loading work end to end."""

import pytest
import torch
from torch import nn

from transferkit.api import train_classifier
from transferkit.backbones import create_backbone
from transferkit.engine.model import build_model, load_model
from transferkit.errors import ConfigError
from transferkit.peft import apply_peft, merge_lora, peft_parameter_count, unmerge_lora
from transferkit.peft.lora import LoRAConv2d, LoRALinear

from ..engine.helpers import config, quiet, tiny_data


def _resnet(classes=3, size=32):
    model = build_model(create_backbone("timm:resnet18", weights=None), classes)
    model.data_config = type(model.data_config)(size, model.data_config.mean, model.data_config.std)
    return model.eval()


def _as_if_trained(model, std):
    """Non-zero LoRA updates, as training would leave them (B starts at zero)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=std)


def _vit(classes=3):
    return build_model(create_backbone("timm:vit_tiny_patch16_224", weights=None), classes).eval()


@pytest.mark.parametrize("method", ["lora", "adapter", "bitfit"])
def test_a_fresh_peft_model_computes_exactly_the_pretrained_function(method):
    model = _resnet()
    x = torch.rand(2, 3, 32, 32)
    before = model(x)
    apply_peft(model, method)
    assert torch.allclose(model(x), before, atol=1e-6)


def test_lora_keeps_parameter_names_and_adds_low_rank_factors():
    model = _resnet()
    names = set(dict(model.named_parameters()))
    apply_peft(model, "lora", r=4)
    new = set(dict(model.named_parameters()))
    assert names <= new and all("lora_" in n for n in new - names)
    assert isinstance(model.backbone.model.conv1, LoRAConv2d)
    assert 0 < peft_parameter_count(model) < 0.1 * sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("layer", [nn.Linear(6, 5), nn.Conv2d(3, 4, 3, padding=1, stride=2)])
def test_lora_merged_equals_unmerged_and_unmerge_restores_the_weight(layer):
    wrapped = (LoRALinear if isinstance(layer, nn.Linear) else LoRAConv2d).wrap(layer, r=2, alpha=4, dropout=0)
    original = wrapped.weight.detach().clone()
    nn.init.normal_(wrapped.lora_B)  # a trained update
    x = torch.rand(3, 6) if isinstance(layer, nn.Linear) else torch.rand(2, 3, 8, 8)
    unmerged = wrapped(x)
    wrapped.merge()
    assert not torch.equal(wrapped.weight, original)
    assert torch.allclose(wrapped(x), unmerged, atol=1e-5)
    wrapped.unmerge()
    assert torch.allclose(wrapped.weight, original, atol=1e-6)
    assert torch.allclose(wrapped(x), unmerged, atol=1e-6)


def test_lora_on_vit_attention_and_merge_over_a_whole_model():
    model = _vit()
    apply_peft(model, "lora", r=4, convs="none")
    assert isinstance(model.backbone.model.blocks[0].attn.qkv, LoRALinear)
    _as_if_trained(model, std=0.02)
    x = torch.rand(1, 3, 224, 224)
    unmerged = model(x)
    assert merge_lora(model) > 0
    assert torch.allclose(model(x), unmerged, atol=1e-4)
    unmerge_lora(model)
    assert torch.allclose(model(x), unmerged, atol=1e-4)


def test_visual_prompt_tokens_on_a_vit_and_padding_prompt_on_a_cnn():
    vit = _vit()
    prefix = vit.backbone.model.num_prefix_tokens
    apply_peft(vit, "prompt", tokens=5)
    assert vit.backbone.model.num_prefix_tokens == prefix + 5
    assert vit(torch.rand(2, 3, 224, 224)).shape == (2, 3)
    cnn = _resnet()
    apply_peft(cnn, "prompt", pad=4)
    prompt = cnn.backbone.model.prompt
    with torch.no_grad():
        prompt.prompt.fill_(1.0)
    x = torch.zeros(1, 3, 32, 32)
    seen = {}
    cnn.backbone.model.conv1.register_forward_pre_hook(lambda _m, a: seen.__setitem__("x", a[0]))
    cnn(x)
    assert seen["x"][..., 4:-4, 4:-4].abs().sum() == 0 and seen["x"][..., :4, :].min() == 1.0
    with pytest.raises(ConfigError, match="32px"):
        cnn(torch.zeros(1, 3, 40, 40))


@pytest.mark.parametrize("strategy", ["lora", "adapter", "bitfit", "prompt"])
def test_training_changes_only_peft_parameters_and_the_head(strategy, tmp_path):
    torch.manual_seed(0)
    _, data = tiny_data()
    backbone = create_backbone("timm:resnet18", weights=None)
    pretrained = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    data.data_config = type(data.data_config)(16, data.data_config.mean, data.data_config.std)
    options = {"options": {"pad": 2}} if strategy == "prompt" else None
    cfg = config(epochs=2, lr=1e-2)
    result = train_classifier(data, backbone, strategy, cfg, strategy_options=options, out=tmp_path, log=quiet)
    model = result.model
    changed = {n for n, p in model.backbone.named_parameters() if n in pretrained and not torch.equal(p, pretrained[n])}
    if strategy == "bitfit":
        assert changed and all(n.endswith("bias") for n in changed)
    else:
        assert not changed  # the pretrained weights stay bit-identical
        new = [p for n, p in model.backbone.named_parameters() if n not in pretrained]
        assert new and any(p.abs().sum() > 0 for p in new)
    assert not any(r["cached"] for r in result.history)
    # the saved model rebuilds the PEFT modules and predicts the same
    loaded = load_model(tmp_path / "best.pt")
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(loaded(x), model.eval()(x), atol=1e-5)


def test_unknown_peft_method_and_bad_options_are_clear():
    from transferkit.errors import UnknownNameError
    from transferkit.strategies import create_strategy

    with pytest.raises(UnknownNameError, match="lora"):
        create_strategy("peft", method="lorra")
    with pytest.raises(ConfigError, match="rank"):
        create_strategy("lora", options={"r": 0})


def test_a_model_saved_after_merging_loads_back_merged(tmp_path):
    model = _resnet()
    apply_peft(model, "lora", r=2)
    _as_if_trained(model, std=0.05)
    x = torch.rand(2, 3, 32, 32)
    expected = model(x)
    merge_lora(model)
    model.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert all(layer.merged for layer in loaded.modules() if hasattr(layer, "lora_merged"))
    assert torch.allclose(loaded(x), expected, atol=1e-4)


def test_padding_prompt_of_zero_pixels_is_refused():
    from transferkit.errors import ConfigError
    from transferkit.peft.prompt import PadPrompt

    with pytest.raises(ConfigError, match="at least 1 pixel"):
        PadPrompt(16, 0)
