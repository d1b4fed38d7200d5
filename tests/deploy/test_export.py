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


def _tiny(seed: int, **kwargs):
    from ..conftest import make_tiny_backbone

    torch.manual_seed(seed)
    return build_model(make_tiny_backbone(), 3, ["a", "b", "c"], **kwargs).eval()


def test_multi_depth_features_tta_and_ensembles_export_with_the_numeric_check(tmp_path):
    from transferkit.engine.ensemble import EnsembleModel

    multi = _tiny(0, layers=["1", "last"])
    multi.tta = "flip"
    ensemble = EnsembleModel([multi, _tiny(1)]).eval()
    for name, net in (("multi", multi), ("ensemble", ensemble)):
        report = export_model(net, tmp_path / f"{name}.pt2")
        assert report.ok and report.max_abs_diff < 1e-4, name


def test_a_pixel_svm_baseline_exports_and_a_hog_one_says_why_not(tmp_path):
    import numpy as np
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    from transferkit.engine.model import TransferModel
    from transferkit.heads.svm import KernelSVMHead

    rng = np.random.default_rng(0)
    x, y = rng.random((30, 3 * 32 * 32)), np.arange(30) % 3
    head = KernelSVMHead.from_sklearn(
        CalibratedClassifierCV(SVC(), method="temperature", ensemble=False, cv=3).fit(x, y)
    )
    pixels = create_backbone("pixels")
    model = TransferModel(pixels, head, ["a", "b", "c"], {"name": "svm", "n_support": head.n_support}).eval()
    assert export_model(model, tmp_path / "pixels.pt2").ok
    hog = TransferModel(create_backbone("hog"), head, ["a", "b", "c"], {"name": "svm"}).eval()
    with pytest.raises(ConfigError, match="HOG descriptors with scikit-image"):
        export_model(hog, tmp_path / "hog.onnx")
