"""Run reports: self-contained HTML with every section, and the same in Markdown."""

from html.parser import HTMLParser

from transferkit.api import train_classifier

from .engine.helpers import config, quiet, tiny_data

SECTIONS = [
    "Summary",
    "Configuration",
    "Data",
    "Learning curves",
    "Confusion matrix",
    "Per-class metrics",
    "Misclassified examples",
    "Grad-CAM (predicted class)",
    "Timing",
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
