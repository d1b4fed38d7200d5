"""Rank backbones without training on real data, and check the ranking against training.

Candidates: ImageNet EfficientNet-Lite0 vs the same network randomly initialised (a
reference any useful pretraining must beat) on 100 Fashion-MNIST images per class. Then a
linear probe per candidate on held-out images shows whether the scores ordered them right.
LEEP and NCE need the source model's label posteriors: N-LEEP / N-NCE take them from a
Gaussian mixture on the features (both rows); the pretrained row also shows them from its real
ImageNet classifier (the papers' definition; a random network has none).

Run: python examples/transferability.py
"""

from __future__ import annotations

import torch
from _common import fashion_subset, features
from sklearn.linear_model import LogisticRegression

from transferkit.backbones import create_backbone
from transferkit.transferability import score


def main() -> None:
    train, test = fashion_subset("train", 100, seed=0), fashion_subset("test", 100, seed=0)
    for title, weights in (("EfficientNet-Lite0 ImageNet", "imagenet"), ("EfficientNet-Lite0 random init", None)):
        backbone = create_backbone("efficientnet_lite0", weights=weights)
        x, y, _ = features(train, backbone)
        xt, yt, _ = features(test, backbone)
        scores = {name: score(name, x.numpy(), y.numpy()) for name in ("logme", "leep", "nce", "hscore")}
        scores["n-leep"], scores["n-nce"] = scores.pop("leep"), scores.pop("nce")
        if backbone.source_head is not None:
            with torch.no_grad():
                probs = backbone.source_head(x).softmax(1).double().numpy()
            scores["leep (ImageNet head)"] = score("leep", x.numpy(), y.numpy(), probs)
            scores["nce (ImageNet head)"] = score("nce", x.numpy(), y.numpy(), probs)
        probe = LogisticRegression(max_iter=3000, C=0.5).fit(x.numpy(), y.numpy()).score(xt.numpy(), yt.numpy())
        print(f"{title:32s} " + " ".join(f"{k} {v:8.4f}" for k, v in scores.items()) + f" | probe acc {probe:.4f}")


if __name__ == "__main__":
    main()
