"""int8 export: really quantized, scored on images it was not calibrated on, refused past the tolerance."""

import pytest
import torch

from transferkit.engine.model import build_model
from transferkit.errors import TransferkitError
from transferkit.export import export_model

from ..conftest import make_tiny_backbone

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _trained_and_data():
    """A tiny network trained to separate three colour classes, and 60 labelled inputs."""
    torch.manual_seed(0)
    model = build_model(make_tiny_backbone(), 3, ["a", "b", "c"])
    labels = torch.arange(3).repeat(20)
    images = torch.rand(60, 3, 16, 16) * 0.5
    images[torch.arange(60), labels] += 0.5
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    return model.eval(), images.numpy(), labels.numpy()


def test_int8_is_quantized_and_scored_on_images_it_was_not_calibrated_on(tmp_path):
    import onnx

    from transferkit.quantize import quantize_int8

    model, images, labels = _trained_and_data()
    export_model(model, tmp_path / "m.onnx")
    report = quantize_int8(tmp_path / "m.onnx", tmp_path / "m.int8.onnx", images, labels, max_accuracy_drop=0.1)
    ops = {node.op_type for node in onnx.load(str(report.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    scored = list(report.evaluation_indices)
    assert report.calibration_images == 20 and len(scored) == report.evaluation_images == 40
    with torch.no_grad():
        expected = (model(torch.from_numpy(images[scored])).argmax(1).numpy() == labels[scored]).mean()
    assert report.fp32_accuracy == pytest.approx(expected)  # the fp32 ONNX model scored as PyTorch scores it
    assert report.int8_accuracy >= report.fp32_accuracy - 0.1 and report.speedup > 0


def test_int8_losing_more_than_allowed_is_refused_and_leaves_the_earlier_file_as_it_was(tmp_path):
    from transferkit.quantize import quantize_int8

    model, images, labels = _trained_and_data()
    export_model(model, tmp_path / "m.onnx")
    (tmp_path / "m.int8.onnx").write_bytes(b"an earlier export")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(TransferkitError, match=r"m\.int8\.onnx was not written"):
        quantize_int8(tmp_path / "m.onnx", tmp_path / "m.int8.onnx", images, labels, max_accuracy_drop=-1.0)
    assert (tmp_path / "m.int8.onnx").read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left
