"""Attribute-based zero-shot on real data: Fashion-MNIST classes described by 8 hand-written
attributes; 7 classes are seen in training, 3 are recognised from their description alone.

Run: python examples/zero_shot.py
"""

from __future__ import annotations

import numpy as np
from _common import CLASSES, fashion_subset, features

from transferkit.zeroshot import zeroshot_methods

# class, [upper body, lower body, footwear, sleeves, long sleeves, open front, has heel, carried]
ATTRIBUTES = {
    "T-shirt/top": [1, 0, 0, 1, 0, 0, 0, 0],
    "Trouser": [0, 1, 0, 0, 0, 0, 0, 0],
    "Pullover": [1, 0, 0, 1, 1, 0, 0, 0],
    "Dress": [1, 1, 0, 0, 0, 0, 0, 0],
    "Coat": [1, 0, 0, 1, 1, 1, 0, 0],
    "Sandal": [0, 0, 1, 0, 0, 1, 1, 0],
    "Shirt": [1, 0, 0, 1, 1, 1, 0, 0],
    "Sneaker": [0, 0, 1, 0, 0, 0, 0, 0],
    "Bag": [0, 0, 0, 0, 0, 0, 0, 1],
    "Ankle boot": [0, 0, 1, 0, 0, 0, 1, 0],
}


def main() -> None:
    table = np.array([ATTRIBUTES[c] for c in CLASSES], dtype=float)
    x, y, _ = features(fashion_subset("train", 150, seed=0))
    xt, yt, _ = features(fashion_subset("test", 100, seed=0))
    unseen = np.array([CLASSES.index(c) for c in ("Pullover", "Sandal", "Dress")])
    seen = np.array([c for c in range(10) if c not in unseen])
    train = np.isin(y.numpy(), seen)
    remap = {c: i for i, c in enumerate(seen)}
    labels = np.array([remap[c] for c in y.numpy()[train]])
    test = np.isin(yt.numpy(), unseen)
    print(f"unseen classes: {[CLASSES[c] for c in unseen]} (chance {1 / len(unseen):.3f})")
    for name in ("eszsl", "dap"):
        model = zeroshot_methods.get(name)().fit(x.numpy()[train], labels, table[seen])
        predicted = unseen[model.predict(xt.numpy()[test], table[unseen])]
        print(f"{name}: zero-shot accuracy {np.mean(predicted == yt.numpy()[test]):.4f}")


if __name__ == "__main__":
    main()
