"""Pixels and HOG as parameter-free backbones; the classical baselines they make."""

import numpy as np
import pytest
import torch
from skimage.feature import hog

from transferkit.api import make_data, train_classifier
from transferkit.backbones import create_backbone
from transferkit.data import TensorImageDataset
from transferkit.engine.model import load_model
from transferkit.errors import ConfigError

from ..engine.helpers import config, quiet


def test_hog_backbone_is_scikit_image_hog_on_the_resized_image():
    backbone = create_backbone("hog")
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    expected = hog(
        image[0].permute(1, 2, 0).numpy(), 9, (8, 8), (2, 2), block_norm="L2-Hys", channel_axis=-1
    )  # Dalal & Triggs: 9 orientations, 8×8 cells, 2×2 blocks
    got = backbone.forward_features(image)[0].numpy()
    assert backbone.num_features == 7 * 7 * 2 * 2 * 9 == got.size
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_pixels_backbone_is_the_raw_image():
    backbone = create_backbone("classical:pixels")
    image = torch.rand(2, 3, 32, 32)
    assert torch.equal(backbone.forward_features(image), image.flatten(1))
    assert backbone.layer_groups() == [] and backbone.data_config.mean == (0.0, 0.0, 0.0)


def test_classical_extractors_have_no_weights_to_load(tmp_path):
    with pytest.raises(ConfigError, match="no weights"):
        create_backbone("hog", weights=tmp_path / "w.pth")


def _stripes(per_class: int, seed: int) -> TensorImageDataset:
    """Two classes a gradient sees: horizontal vs vertical stripes, random phase and noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in (0, 1):
        for _ in range(per_class):
            t = np.arange(24)
            wave = 0.5 + 0.4 * np.sin(t / 2.0 + rng.uniform(0, 6.3))
            plane = np.tile(wave[:, None], (1, 24)) if label == 0 else np.tile(wave[None, :], (24, 1))
            images.append(np.clip(plane + rng.normal(0, 0.15, plane.shape), 0, 1))
            labels.append(label)
    return TensorImageDataset(torch.tensor(np.stack(images), dtype=torch.float32), labels)


@pytest.mark.parametrize("strategy", ["sklearn-hog-svm", "sklearn-pixels-svm"])
def test_classical_baselines_beat_chance_and_save_a_loadable_model(tmp_path, strategy):
    data = make_data(_stripes(12, 0), _stripes(10, 1), ["horizontal", "vertical"], create_backbone("hog").data_config)
    result = train_classifier(data, "hog", strategy, config(), out=tmp_path, log=quiet, report=False)
    assert result.metrics.accuracy >= 0.8  # chance is 0.5
    model = load_model(tmp_path / "best.pt")
    x = torch.stack([data.val[i][0] for i in range(4)])
    size = model.data_config.input_size
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    with torch.no_grad():
        assert torch.allclose(model(x), result.model.eval()(x))
    assert model.spec()["backbone"] == ("classical:hog" if "hog" in strategy else "classical:pixels")
