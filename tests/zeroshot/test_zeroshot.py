"""Zero-shot: unseen classes recognised from their attribute descriptions alone."""

import numpy as np
import pytest

from transferkit.errors import ConfigError, DataError, WeightsNotFoundError
from transferkit.zeroshot import ClipZeroShot, read_attribute_table, zeroshot_methods


def _world(seed=0, classes=10, attributes=14, per_class=40, dim=48):
    rng = np.random.default_rng(seed)
    table = (rng.random((classes, attributes)) < 0.5).astype(float)
    mixing = rng.normal(size=(attributes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    features = table[labels] @ mixing + 0.5 * rng.normal(size=(len(labels), dim))
    return features, labels, table


@pytest.mark.parametrize("name", ["eszsl", "dap"])
def test_unseen_classes_are_recognised_from_attributes(name):
    features, labels, table = _world()
    seen, unseen = np.arange(6), np.arange(6, 10)
    train = np.isin(labels, seen)
    method = zeroshot_methods.get(name)().fit(features[train], labels[train], table[seen])
    test = ~train
    predicted = unseen[method.predict(features[test], table[unseen])]
    accuracy = (predicted == labels[test]).mean()
    assert accuracy > 0.6, accuracy  # chance: 0.25


def test_attribute_table_csv_and_its_errors(tmp_path):
    good = tmp_path / "a.csv"
    good.write_text("class,striped,furry\nzebra,1,0\ncat,0,1\n")
    table = read_attribute_table(good)
    assert table.attributes == ["striped", "furry"] and table.rows(["cat"]).tolist() == [[0.0, 1.0]]
    with pytest.raises(DataError, match="no row"):
        table.rows(["dog"])
    bad = tmp_path / "b.csv"
    bad.write_text("class,striped\nzebra,yes\ncat,no\n")
    with pytest.raises(DataError, match="numbers"):
        read_attribute_table(bad)


def test_clip_without_open_clip_or_weights_is_a_clear_error(tmp_path):
    try:
        import open_clip  # noqa: F401

        expected = WeightsNotFoundError
    except ImportError:
        expected = ConfigError
    with pytest.raises(expected, match="open_clip|weights"):
        ClipZeroShot(["cat", "dog"], weights=tmp_path / "missing.bin")


def test_clip_scores_are_scaled_cosines_to_the_mean_prompt_embedding(tmp_path):
    """With a randomly initialised open_clip model saved as a local weights file (no download)."""
    open_clip = pytest.importorskip("open_clip")
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-S-32")
    torch.save(model.state_dict(), tmp_path / "clip.pt")
    clf = ClipZeroShot(["cat", "dog", "traffic_light"], arch="ViT-S-32", weights=tmp_path / "clip.pt")
    images = torch.rand(2, 3, 224, 224)
    logits = clf.logits(images)
    assert logits.shape == (2, 3)
    tokenizer = open_clip.get_tokenizer("ViT-S-32")
    with torch.no_grad():
        text = clf.model.encode_text(
            tokenizer(
                ["a photo of a traffic light.", "a close-up photo of a traffic light.", "an image of a traffic light."]
            )
        )
        text = (text / text.norm(dim=-1, keepdim=True)).mean(0)
        image = clf.model.encode_image(images)
        image = image / image.norm(dim=-1, keepdim=True)
    expected = 100 * image @ (text / text.norm())
    assert torch.allclose(logits[:, 2], expected, atol=1e-3)
