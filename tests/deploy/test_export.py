"""Exports compute the same logits as PyTorch, at another batch size than the one exported."""

import json

import pytest
import torch

from transferkit.backbones import create_backbone
from transferkit.engine.model import build_model
from transferkit.errors import ConfigError
from transferkit.export import export_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model(create_backbone("timm:resnet18", weights=None), 3, ["a", "b", "c"])
    m.data_config = type(m.data_config)(32, m.data_config.mean, m.data_config.std)
    return m.eval()


@pytest.mark.parametrize("suffix", [".ts", ".pt2"])
def test_export_matches_pytorch(model, tmp_path, suffix):
    report = export_model(model, tmp_path / f"m{suffix}")
    assert report.ok and report.max_abs_diff < 1e-4 and report.path.stat().st_size > 0


def test_onnx_matches_pytorch_and_carries_the_class_names(model, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    report = export_model(model, tmp_path / "m.onnx")
    assert report.ok and report.max_abs_diff < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["classes"]) == ["a", "b", "c"]


def test_unknown_format_is_a_clear_error(model, tmp_path):
    with pytest.raises(ConfigError, match=".onnx, .ts or .pt2"):
        export_model(model, tmp_path / "m.bin")
