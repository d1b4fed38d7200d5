"""Run reports: ``report.html`` (self-contained: CSS inline, images as data URIs, no scripts)
and ``report.md`` (images beside it in ``report_files/``), from one list of sections.

``fit_report`` covers a training run, results first: validation and test metrics, what ``auto``
tried, confusion matrix, per-class metrics, learning curves, misclassified examples, Grad-CAM
samples, the data with a sample grid, timing, and the configuration collapsed at the end.
``table_report`` serves ``compare`` and ``adapt``.
"""

from __future__ import annotations

import base64
import html
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferkit.data.transforms import denormalize
from transferkit.engine.model import device_of

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto}figure{display:inline-block;margin:.3em;text-align:center}
figcaption{font-size:.8em;color:#555}
"""


@dataclass
class Report:
    title: str
    sections: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)

    def section(self, heading: str) -> list[tuple[str, Any]]:
        items: list[tuple[str, Any]] = []
        self.sections.append((heading, items))
        return items

    def write(self, out: Path) -> tuple[Path, Path]:
        out.mkdir(parents=True, exist_ok=True)
        files = out / "report_files"
        files.mkdir(exist_ok=True)
        html_parts = [
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(self.title)}</h1>"
        ]
        md_parts = [f"# {self.title}\n"]
        counter = 0
        for heading, items in self.sections:
            html_parts.append(f"<h2>{html.escape(heading)}</h2>")
            md_parts.append(f"\n## {heading}\n")
            for kind, value in items:
                if kind == "text":
                    html_parts.append(f"<p>{html.escape(value)}</p>")
                    md_parts.append(f"{value}\n")
                elif kind == "code":
                    html_parts.append(f"<pre>{html.escape(value)}</pre>")
                    md_parts.append(f"```\n{value}\n```\n")
                elif kind == "details":  # (summary line, text): collapsed until clicked
                    summary, text = value
                    html_parts.append(
                        f"<details><summary>{html.escape(summary)}</summary><pre>{html.escape(text)}</pre></details>"
                    )
                    md_parts.append(f"<details><summary>{summary}</summary>\n\n```\n{text}\n```\n</details>\n")
                elif kind == "table":
                    header, rows = value
                    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
                    body = "".join(
                        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
                    )
                    html_parts.append(f"<table><tr>{cells}</tr>{body}</table>")
                    md_parts.append("| " + " | ".join(map(str, header)) + " |")
                    md_parts.append("|" + "---|" * len(header))
                    md_parts.extend("| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows)
                    md_parts.append("")
                elif kind == "images":
                    figures = []
                    for png, caption in value:
                        counter += 1
                        name = f"img{counter:03d}.png"
                        (files / name).write_bytes(png)
                        data = base64.b64encode(png).decode()
                        figures.append(
                            f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'>"
                            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                        )
                        md_parts.append(f"![{caption}](report_files/{name})")
                    html_parts.append("<div>" + "".join(figures) + "</div>")
                    md_parts.append("")
        html_parts.append(f"<p><small>transferkit, {time.strftime('%Y-%m-%d %H:%M')}</small></p></body></html>")
        html_path, md_path = out / "report.html", out / "report.md"
        html_path.write_text("".join(html_parts))
        md_path.write_text("\n".join(md_parts) + "\n")
        return html_path, md_path


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def png_bytes(array: np.ndarray, scale: int = 1) -> bytes:
    from PIL import Image

    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _uint8(image: torch.Tensor) -> np.ndarray:
    return (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def _file_png(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def fit_report(
    out: Path,
    model: Any,
    data: Any,
    result: Any,
    strategy: str,
    tables: Sequence[tuple[str, list[str], list[list[Any]], Sequence[str]]] = (),
    examples: int = 12,
) -> tuple[Path, Path]:
    """The report of a ``fit`` run in ``out`` (which may hold curves.png and confusion.png).

    ``tables``: extra (heading, header, rows, lines of text under the table) sections, e.g. what ``auto`` tried.
    """
    report = Report(f"transferkit run: {model.spec().get('backbone', '?')} · {strategy}")
    _add_results(report, result, data)
    for heading, header, rows, notes in tables:
        items = report.section(heading)
        items.append(("table", (header, rows)))
        items.extend(("text", note) for note in notes)
    _add_confusion(report, out)
    probs, labels = _val_predictions(model, data.val)
    _add_per_class(report, data.classes, labels, probs.argmax(1).numpy(), getattr(result, "test_metrics", None))
    _add_curves(report, out)
    _add_examples(report, model, data, (probs, labels), examples)
    _add_data(report, data, model.data_config)
    _add_timing(report, result, len(data.train))
    config_file = out / "config.yaml"
    if config_file.is_file():
        text = config_file.read_text()
        lines = len(text.splitlines())
        report.section("Configuration").append(("details", (f"config.yaml ({lines} lines): click to show", text)))
    return report.write(out)


def _add_results(report: Report, result: Any, data: Any) -> None:
    """Validation and test metrics side by side; says when there is no test split."""
    m, test = result.metrics, getattr(result, "test_metrics", None)
    names = ["accuracy", f"top-{m.top_k} accuracy", "macro precision", "macro recall", "macro F1"]
    fields = ["accuracy", "top_k_accuracy", "precision", "recall", "f1"]
    header = ["metric", "validation"] + (["test"] if test is not None else [])
    rows = [[n, getattr(m, f)] + ([getattr(test, f)] if test is not None else []) for n, f in zip(names, fields)]
    items = report.section("Results")
    items.append(("table", (header, rows)))
    extra = getattr(result, "extra", None) or {}
    if "winner" in extra:  # auto: one candidate chosen among several, each trained its own epochs
        tried = sum(1 for row in extra.get("auto", []) if row.get("status") == "ok")
        items.append(("text", f"auto selected {extra['winner']} among {tried} candidates, on validation."))
    else:
        epochs = len(getattr(result, "history", []) or [])
        items.append(("text", f"Best epoch {result.best_epoch + 1} of {epochs}, selected on validation."))
    if test is not None:
        items.append(("text", f"Test: {len(data.test)} images, scored once after selection (never used to choose)."))
    else:
        items.append(("text", "No test split: add a test/ folder beside train/ and val/ for an unbiased estimate."))


def _add_data(report: Report, data: Any, dc: Any) -> None:
    """Summary, class counts and one validation image per class (the first 20 classes)."""
    items = report.section("Data")
    items.append(("text", data.summary()))
    counts = data.splits.counts("train") if data.splits else None
    if counts:
        val_counts = data.splits.counts("val")
        rows = [[c, a, b] for c, a, b in zip(data.classes, counts, val_counts)]
        items.append(("table", (["class", "train", "val"], rows)))
    grid = []
    for k, index in _first_of_each_class(data.val, len(data.classes[:20])).items():
        grid.append((png_bytes(_uint8(denormalize(data.val[index][0], dc.mean, dc.std))), data.classes[k]))
    if grid:
        items.append(("images", grid))


def _labels_of(dataset: Any) -> list[int]:
    """Every label, read once (from ``dataset.labels`` when it has one, without decoding images)."""
    labels = getattr(dataset, "labels", None)
    return list(labels) if labels is not None else [int(dataset[i][1]) for i in range(len(dataset))]


def _first_of_each_class(dataset: Any, num_classes: int) -> dict[int, int]:
    """Class → index of its first image, for the first ``num_classes`` classes present."""
    first: dict[int, int] = {}
    for index, label in enumerate(_labels_of(dataset)):
        if label < num_classes and label not in first:
            first[label] = index
    return dict(sorted(first.items()))


def _add_figures(report: Report, out: Path) -> None:
    _add_curves(report, out)
    _add_confusion(report, out)


def _add_curves(report: Report, out: Path) -> None:
    curves = _file_png(out / "curves.png")
    if curves:
        report.section("Learning curves").append(("images", [(curves, "loss and accuracy per epoch")]))


def _add_confusion(report: Report, out: Path) -> None:
    confusion = _file_png(out / "confusion.png")
    if confusion:
        caption = "validation: rows true class, columns predicted"
        report.section("Confusion matrix").append(("images", [(confusion, caption)]))


def _val_predictions(model: Any, val: Any) -> tuple[torch.Tensor, np.ndarray]:
    """(class probabilities, labels) of the validation set; images are decoded batch by batch, not kept."""
    model.eval()
    labels, probs = [], []
    with torch.inference_mode():
        for start in range(0, len(val), 64):
            batch = [val[i] for i in range(start, min(start + 64, len(val)))]
            x = torch.stack([b[0] for b in batch])
            probs.append(model(x.to(device_of(model))).float().softmax(1).cpu())
            labels += [int(b[1]) for b in batch]
    return torch.cat(probs), np.array(labels)


def _add_per_class(report: Report, classes: list[str], y: np.ndarray, pred: np.ndarray, test: Any = None) -> None:
    """Validation precision/recall/F1/support per class, and the test split's F1 when it was scored."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y, pred, labels=range(len(classes)), zero_division=0)
    rows = [[c, float(a), float(b), float(d), int(e)] for c, a, b, d, e in zip(classes, p, r, f, s)]
    header = ["class", "val precision", "val recall", "val F1", "val support"]
    if test is not None:
        header.append("test F1")
        rows = [row + [float(t)] for row, t in zip(rows, test.per_class_f1)]
    report.section("Per-class metrics").append(("table", (header, rows)))


def _add_examples(report: Report, model: Any, data: Any, predictions: tuple, examples: int) -> None:
    """The most confident mistakes, then Grad-CAM over some mistakes and some correct predictions.

    Only the shown images are decoded again (by index): memory stays O(examples), not O(validation set).
    """
    probs, y = predictions
    dc, pred, classes = model.data_config, probs.argmax(1).numpy(), data.classes
    wrong = np.flatnonzero(pred != y)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]].numpy())][:examples]  # most confident mistakes first
    section = report.section("Misclassified examples")
    if len(wrong):
        shown = []
        for i in wrong:
            caption = f"true {classes[y[i]]} → {classes[pred[i]]} ({float(probs[i, pred[i]]):.2f})"
            shown.append((png_bytes(_uint8(denormalize(data.val[int(i)][0], dc.mean, dc.std))), caption))
        section.append(("images", shown))
    else:
        section.append(("text", "No validation image is misclassified."))
    chosen = list(wrong[: examples // 2]) + _across_classes(np.flatnonzero(pred == y), y, examples // 2)
    if chosen:
        images = torch.stack([data.val[int(i)][0] for i in chosen])
        _add_grad_cam(report, model, images, [f"pred {classes[pred[i]]}" for i in chosen])


def _across_classes(indices: np.ndarray, labels: np.ndarray, count: int) -> list[int]:
    """Up to ``count`` of ``indices``, taken class by class in turn (the first of each class, then the second…),
    so a few examples show every class rather than the first ones in folder order."""
    by_class: dict[int, list[int]] = {}
    for i in indices:
        by_class.setdefault(int(labels[i]), []).append(int(i))
    queues = [by_class[c] for c in sorted(by_class)]
    picked: list[int] = []
    for rank in range(max(map(len, queues), default=0)):
        picked += [q[rank] for q in queues if rank < len(q)]
    return picked[:count]


def _add_grad_cam(report: Report, model: Any, images: torch.Tensor, captions: list[str]) -> None:
    from transferkit.interpret import grad_cam, overlay

    dc = model.data_config
    try:
        cams, _ = grad_cam(model, images.to(device_of(model)))
        shown = [
            (png_bytes(overlay(denormalize(image, dc.mean, dc.std), cam)), c)
            for image, cam, c in zip(images, cams, captions)
        ]
        report.section("Grad-CAM (predicted class)").append(("images", shown))
    except Exception as exc:  # noqa: BLE001 - a report must not fail on an unusual architecture
        report.section("Grad-CAM (predicted class)").append(("text", f"Not available: {exc}"))


def _add_timing(report: Report, result: Any, train_images: int) -> None:
    cache = result.extra or {}
    if "winner" in cache:  # auto: the time of every candidate; the selected one's epochs are in its own run folder
        header = ["seconds, all candidates", "training images"]
        values = [f"{result.train_seconds:.1f}", train_images]
        report.section("Timing").append(("table", (header, [values])))
        return
    header = ["training seconds", "images/s (training)", "frozen-part cache seconds", "epochs run"]
    values = [
        result.train_seconds,
        result.images_per_second,
        float(cache.get("cache_seconds", 0.0)),
        len(result.history),
    ]
    report.section("Timing").append(("table", (header, [values])))


def table_report(
    out: Path,
    title: str,
    header: list[str],
    rows: list[list[Any]],
    notes: Sequence[str] = (),
    images: Sequence[tuple[Path, str]] = (),
) -> tuple[Path, Path]:
    """A short report: one results table, notes, and optional plots (``compare``, ``adapt``)."""
    report = Report(title)
    items = report.section("Results")
    items.append(("table", (header, rows)))
    for note in notes:
        items.append(("text", note))
    pictures = [(p.read_bytes(), caption) for p, caption in images if p.is_file()]
    if pictures:
        report.section("Plots").append(("images", pictures))
    return report.write(out)


def dense_report(
    out: Path, result: Any, examples: list[tuple[np.ndarray, str]], per_class: tuple | None = None
) -> Path:
    """``report.html``/``report.md`` of a segmentation or detection run (a ``DenseResult``): results first (best
    epoch's validation metrics, the test split's when scored), the per-class (header, rows) table, ``examples``
    ((H, W, 3) uint8 overlays of truth and prediction, with captions: ``segmentation.overlays``,
    ``detection.overlays``), learning curves and the epoch table; the model's spec last."""
    spec = result.model.spec()
    task, backbone, arch = spec.get("task", "dense"), spec.get("backbone", "?"), spec.get("arch", "")
    report = Report(f"transferkit {task} run: {backbone} · {arch}")
    val = {k.removeprefix("val_"): v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    summary = report.section("Results")
    summary.append(("table", (["best epoch", *val], [[result.best_epoch + 1, *val.values()]])))
    test = {k: v for k, v in (result.test_metrics or {}).items() if isinstance(v, (int, float))}
    if test:
        report.section("Test (scored once, after selection)").append(("table", (list(test), [list(test.values())])))
    if per_class:
        report.section("Per class (validation)").append(("table", per_class))
    if examples:
        images = [(png_bytes(array, scale=2), caption) for array, caption in examples]
        report.section("Validation images: truth | prediction").append(("images", images))
    _add_figures(report, out)
    columns = list(dict.fromkeys(k for row in result.history for k in row))
    history = report.section("Epochs")
    history.append(("table", (columns, [[row.get(c, "") for c in columns] for row in result.history])))
    report.section("Model").append(("code", "\n".join(f"{k}: {v}" for k, v in spec.items())))
    return report.write(out)[0]
