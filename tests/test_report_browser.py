"""``report.html`` rendered by a real browser (headless Chromium): every image decodes, the page is not blank.

Skipped, saying why, where Chromium is not installed (``.ci/run`` installs it: ``apt-get install -y chromium``).
"""

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from transferkit.api import train_classifier

from .engine.helpers import config, quiet, tiny_data

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="Chromium is not installed: apt-get install -y chromium")

# run after the page loaded: how many images decoded (non-zero natural size), written into the DOM
PROBE = """<script>window.addEventListener('load', () => {
  const images = [...document.images];
  const loaded = images.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length;
  const p = document.createElement('p'); p.id = 'probe';
  p.textContent = `images ${images.length} loaded ${loaded} text ${document.body.innerText.trim().length}`;
  document.body.appendChild(p);
});</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]
    return subprocess.run([BROWSER, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    backbone, data = tiny_data()
    train_classifier(data, backbone, "fine-tune", config(epochs=2), out=out, log=quiet)
    return out / "report.html"


def test_every_image_of_the_report_decodes_in_a_real_browser(report, tmp_path):
    probed = tmp_path / "probed.html"  # the report itself has no scripts; a copy carries the probe
    probed.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri()).stdout
    found = re.search(r"images (\d+) loaded (\d+) text (\d+)", dom)
    assert found, dom[-2000:]
    images, loaded, text = map(int, found.groups())
    assert images >= 5 and loaded == images  # curves, confusion, samples, mistakes, Grad-CAM
    assert text > 500


def test_the_rendered_report_is_not_blank(report, tmp_path):
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,1600", report.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1200)
    dark = (pixels < 128).mean()  # text, table borders, images: some of the page is not white
    assert 0.005 < dark < 0.6, dark
    assert pixels[:200].std() > 10  # the title and the results table are at the top
