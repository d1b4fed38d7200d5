"""Run reports: self-contained HTML with every section, and the same in Markdown."""

from html.parser import HTMLParser

from transferkit.api import train_classifier

from .engine.helpers import config, quiet, tiny_data

SECTIONS = [  # results first, the configuration last (collapsed)
    "Results",
    "Confusion matrix",
    "Per-class metrics",
    "Learning curves",
    "Misclassified examples",
    "Grad-CAM (predicted class)",
    "Data",
    "Timing",
    "Configuration",
]


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2, self.sources, self.external, self._in_h2 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in_h2 = tag == "h2"
        if tag == "img":
            self.sources.append(attrs.get("src", ""))
        if tag in ("script", "link", "iframe") or (tag == "a" and "href" in attrs):
            self.external.append(tag)

    def handle_data(self, data):
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


def test_fit_writes_a_self_contained_html_report_and_markdown(tmp_path):
    backbone, data = tiny_data()
    train_classifier(data, backbone, "fine-tune", config(epochs=2), out=tmp_path, log=quiet)
    parser = _Collect()
    parser.feed((tmp_path / "report.html").read_text())
    assert parser.h2 == SECTIONS
    assert parser.sources and all(src.startswith("data:image/png;base64,") for src in parser.sources)
    assert not parser.external  # nothing fetched when the file is opened offline
    markdown = (tmp_path / "report.md").read_text()
    assert all(f"## {s}" in markdown for s in SECTIONS)
    linked = [line.split("](")[1].rstrip(")") for line in markdown.splitlines() if line.startswith("![")]
    assert linked and all((tmp_path / name).is_file() for name in linked)


def test_report_can_be_switched_off(tmp_path):
    backbone, data = tiny_data()
    train_classifier(data, backbone, "feature-extraction", config(epochs=1), out=tmp_path, log=quiet, report=False)
    assert not (tmp_path / "report.html").exists()


def test_a_frozen_backbone_run_still_gets_grad_cam_samples(tmp_path):
    backbone, data = tiny_data()
    train_classifier(data, backbone, "feature-extraction", config(epochs=1), out=tmp_path, log=quiet)
    text = (tmp_path / "report.html").read_text()
    assert "Grad-CAM" in text and "Not available" not in text


class _Upscaled:
    """``n`` validation images upscaled to 128 px (192 KiB each as float32): big enough to see in RSS."""

    def __init__(self, dataset, n):
        self.dataset, self.n = dataset, n
        self.labels = [int(dataset[i % len(dataset)][1]) for i in range(n)]

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        import torch

        image, label = self.dataset[index % len(self.dataset)]
        return torch.nn.functional.interpolate(image[None], size=128)[0], label


def _peak_rss_growth_mb(fn) -> float:
    """Peak resident memory during ``fn()`` above the memory before it (Linux: VmHWM reset via clear_refs)."""
    import pytest

    def status(key):
        line = next(x for x in open("/proc/self/status") if x.startswith(key))
        return int(line.split()[1]) / 1024

    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset the peak (VmHWM) to the current RSS
    except OSError:
        pytest.skip("cannot reset the peak RSS here (/proc/self/clear_refs): Linux only")
    before = status("VmRSS")
    fn()
    return status("VmHWM") - before


def test_the_reports_memory_does_not_grow_with_the_validation_size(tmp_path):
    import functools

    import torch

    from transferkit.report import fit_report

    backbone, data = tiny_data()
    result = train_classifier(data, backbone, "feature-extraction", config(epochs=1), log=quiet, report=False)
    growth = {}
    for n in (100, 1500):  # 1500 images of 192 KiB: 280 MiB if the report kept them
        big = type(data)(**{**vars(data), "val": _Upscaled(data.val, n)})
        with torch.no_grad():
            run = functools.partial(fit_report, tmp_path / str(n), result.model, big, result, "x")
            growth[n] = _peak_rss_growth_mb(run)
    assert growth[1500] - growth[100] < 60, growth


def test_the_report_opens_with_validation_and_test_results_and_collapses_the_configuration(tmp_path):
    from transferkit.data.dataset import TensorImageDataset

    backbone, data = tiny_data()
    data.test = type(data.val)(TensorImageDataset(data.val.base.images, data.val.base._labels), data.val.transform)
    result = train_classifier(data, backbone, "fine-tune", config(epochs=1), out=tmp_path, log=quiet)
    text = (tmp_path / "report.html").read_text()
    results = text[text.index("<h2>Results</h2>") : text.index("<h2>Confusion matrix</h2>")]
    assert "<th>validation</th><th>test</th>" in results
    assert (
        f"<td>accuracy</td><td>{result.metrics.accuracy:.4f}</td><td>{result.test_metrics.accuracy:.4f}</td>" in results
    )
    assert text.index("<h2>Results</h2>") < text.index("<h2>Configuration</h2>")
    configuration = text[text.index("<h2>Configuration</h2>") :]
    assert configuration.startswith("<h2>Configuration</h2><details><summary>config.yaml (")
    assert "<th>test F1</th>" in text


def test_grad_cam_examples_are_taken_class_by_class():
    import numpy as np

    from transferkit.report import _across_classes

    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    right = np.array([0, 1, 2, 3, 4, 5, 7])  # image 6 is a mistake
    assert _across_classes(right, labels, 4) == [0, 3, 5, 1]  # first of each class, then the second of class 0
    assert _across_classes(right, labels, 10) == [0, 3, 5, 1, 4, 7, 2]
    assert _across_classes(np.array([], dtype=int), labels, 3) == []
