"""Export a trained model for deployment, each export checked numerically against PyTorch.

Formats:
- ``onnx``: ``torch.onnx.export`` (dynamo exporter), dynamic batch; class names, input size,
  mean and std in the model's metadata; checked with onnxruntime.
- ``torchscript``: ``torch.jit.trace`` (PyTorch marks TorchScript deprecated; kept for C++ and
  mobile runtimes that still load it), the spec in ``extra_files``.
- ``pt2``: ``torch.export`` ExportedProgram, PyTorch's successor to TorchScript.

Every exported model takes normalised (N, 3, S, S) float images and returns logits.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from transferkit.engine.model import TransferModel
from transferkit.errors import ConfigError, TransferkitError

FORMATS = ("onnx", "torchscript", "pt2")


@dataclass(frozen=True)
class ExportReport:
    format: str
    path: Path
    max_abs_diff: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def _example(model: TransferModel, batch: int = 2) -> torch.Tensor:
    size = model.data_config.input_size
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def export_model(
    model: TransferModel, path: str | Path, fmt: str | None = None, tolerance: float = 1e-4
) -> ExportReport:
    """Write ``model`` to ``path`` in ``fmt`` (default: from the suffix) and compare outputs on a fresh batch.

    Raises:
        TransferkitError: if the exported model's logits differ from PyTorch's by more than ``tolerance``.
    """
    path = Path(path)
    fmt = fmt or {".onnx": "onnx", ".ts": "torchscript", ".pt2": "pt2"}.get(path.suffix, "")
    if fmt not in FORMATS:
        raise ConfigError(
            f"Unknown export format for {path.name!r}; use .onnx, .ts or .pt2 (or fmt= one of {FORMATS})."
        )
    from transferkit.backbones.classical import HogFeatures

    if any(isinstance(m, HogFeatures) for m in model.modules()):
        raise ConfigError(
            "This model computes HOG descriptors with scikit-image (NumPy, outside the graph), which ONNX, "
            "TorchScript and torch.export cannot trace. Use it through `transferkit predict` or `serve`, or "
            "export a model without the HOG baseline (e.g. the best network candidate in RUN/candidates/)."
        )
    model = model.float().eval().to(memory_format=torch.contiguous_format)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = json.dumps(model.spec())
    check = _example(model, batch=3)  # another batch size than the export example: dynamic batch works
    with torch.no_grad():
        expected = model(check).numpy()
    if fmt == "onnx":
        got = _onnx(model, path, spec, check)
    elif fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            traced = torch.jit.trace(model, _example(model))
            traced.save(str(path), _extra_files={"transferkit_spec.json": spec})
            loaded = torch.jit.load(str(path))
        with torch.no_grad():
            got = loaded(check).numpy()
    else:
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.export.export(model, (_example(model),), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path), extra_files={"transferkit_spec.json": spec})
        with torch.no_grad():
            got = torch.export.load(str(path)).module()(check).numpy()
    diff = float(np.abs(got - expected).max())
    report = ExportReport(fmt, path, diff, tolerance)
    if not report.ok:
        raise TransferkitError(
            f"The {fmt} export differs from PyTorch by {diff:.3g} (> {tolerance}); it was written to {path} "
            "but should not be used. Please report this model/format combination."
        )
    return report


def _onnx(model: TransferModel, path: Path, spec: str, check: torch.Tensor) -> np.ndarray:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise ConfigError(
            "ONNX export needs onnx, onnxscript and onnxruntime: pip install 'transferkit[export]'."
        ) from None
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (_example(model),),
            str(path),
            dynamo=True,
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),  # by position: any forward
        )
    proto = onnx.load(str(path))
    for key, value in (("transferkit_spec", spec), ("classes", json.dumps(model.classes))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": check.numpy()})[0]
