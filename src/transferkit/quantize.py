"""int8 quantization of an exported ONNX model (ONNX Runtime static quantization, QDQ format):
the seeds' "compression + transfer" for edge deployment.

Activations are calibrated on a few of the user's own images; the fp32 and int8 models are then
scored on other images of the same set (accuracy, images/s of one CPU session each), and the
quantized model is refused (:class:`~transferkit.errors.TransferkitError`) when it loses more
accuracy than allowed, and then not written (an earlier file of that name is left as it was).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferkit.errors import ConfigError, TransferkitError


@dataclass(frozen=True)
class QuantizationReport:
    path: Path
    fp32_accuracy: float
    int8_accuracy: float
    fp32_images_per_second: float
    int8_images_per_second: float
    calibration_images: int
    evaluation_images: int
    evaluation_indices: tuple[int, ...] = ()  # which of the given images were scored (never calibrated on)

    @property
    def accuracy_drop(self) -> float:
        return self.fp32_accuracy - self.int8_accuracy

    @property
    def speedup(self) -> float:
        return self.int8_images_per_second / self.fp32_images_per_second


class _Calibration:
    """ONNX Runtime's ``CalibrationDataReader``: the calibration images one at a time (equal shapes)."""

    def __init__(self, images: np.ndarray) -> None:
        self.batches = iter([{"images": images[i : i + 1]} for i in range(len(images))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)

    def rewind(self) -> None:  # pragma: no cover - called by some ORT versions only
        pass


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _accuracy_and_speed(path: Path, images: np.ndarray, labels: np.ndarray, batch: int = 32) -> tuple[float, float]:
    session = _session(path)
    session.run(None, {"images": images[:batch]})  # warm-up
    started, predictions = time.perf_counter(), []
    for start in range(0, len(images), batch):
        predictions.append(session.run(None, {"images": images[start : start + batch]})[0].argmax(1))
    seconds = time.perf_counter() - started
    return float((np.concatenate(predictions) == labels).mean()), len(images) / seconds


def quantize_int8(
    fp32_onnx: str | Path,
    out: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    max_accuracy_drop: float = 0.01,
    calibration_images: int = 100,
    seed: int = 0,
) -> QuantizationReport:
    """Quantize ``fp32_onnx`` to int8 in ``out``: calibrated on some of ``images``, scored on the others.

    Args:
        images: (N, 3, S, S) float32 inputs, normalised as the model expects; ``labels``: (N,) class indices.
        max_accuracy_drop: Largest allowed fp32 − int8 accuracy on the evaluation images.
        calibration_images: At most this many images (and at most a third) calibrate the activation ranges.

    Raises:
        TransferkitError: when int8 loses more than ``max_accuracy_drop``; ``out`` is then left as it was (the
            model is quantized into a temporary file beside it, which replaces ``out`` only when accepted).
    """
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        raise ConfigError("int8 quantization needs onnxruntime: pip install 'transferkit[export]'.") from None
    if len(images) < 6 or len(images) != len(labels):
        raise ConfigError(f"Quantization needs at least 6 labelled images, got {len(images)} and {len(labels)} labels.")
    order = np.random.default_rng(seed).permutation(len(images))
    n_cal = max(2, min(calibration_images, len(images) // 3))
    calibrate, evaluate = order[:n_cal], order[n_cal:]
    out = Path(out)
    candidate = out.with_name(f".{out.stem}.candidate{out.suffix}")  # replaces ``out`` only when accepted
    try:
        report = _quantize_and_score(Path(fp32_onnx), candidate, images, labels, calibrate, evaluate)
        if report.accuracy_drop > max_accuracy_drop:
            raise TransferkitError(
                f"int8 accuracy {report.int8_accuracy:.4f} is {report.accuracy_drop:.4f} below fp32 "
                f"({report.fp32_accuracy:.4f}) on {len(evaluate)} images, more than --max-accuracy-drop "
                f"{max_accuracy_drop}; {out} was not written. Keep the fp32 model, or calibrate on more images "
                "(--calibration-images)."
            )
        os.replace(candidate, out)
    finally:
        candidate.unlink(missing_ok=True)
    return dataclasses.replace(report, path=out)


def _preprocessed(fp32_onnx: Path, prepared: Path) -> Path:
    """``fp32_onnx`` after shape inference and graph optimisation, written to ``prepared``; ``fp32_onnx`` itself
    where that fails (pre-processing is an optimisation: the model is then quantized as exported)."""
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(fp32_onnx), str(prepared))
        return prepared
    except Exception:  # noqa: BLE001
        return fp32_onnx


def _quantize_and_score(
    fp32_onnx: Path, out: Path, images: np.ndarray, labels: np.ndarray, calibrate: np.ndarray, evaluate: np.ndarray
) -> QuantizationReport:
    """``fp32_onnx`` quantized into ``out`` (calibrated on ``images[calibrate]``), both scored on the rest."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    prepared = out.with_name(f".{out.stem}.prepared.onnx")
    try:
        source = _preprocessed(fp32_onnx, prepared)
        quantize_static(str(source), str(out), _Calibration(images[calibrate].astype(np.float32)),
                        quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.Percentile)  # fmt: skip
    finally:
        prepared.unlink(missing_ok=True)  # also when quantization fails
    x, y = images[evaluate].astype(np.float32), labels[evaluate]
    fp32_acc, fp32_speed = _accuracy_and_speed(fp32_onnx, x, y)
    int8_acc, int8_speed = _accuracy_and_speed(out, x, y)
    scored = tuple(int(i) for i in evaluate)
    return QuantizationReport(out, fp32_acc, int8_acc, fp32_speed, int8_speed, len(calibrate), len(evaluate), scored)
