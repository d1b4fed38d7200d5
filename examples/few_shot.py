"""Few-shot on real data: 5 Fashion-MNIST classes are base classes (meta-training), the other
5 are novel; 5-way 1-shot and 5-shot episodes on novel classes, 600 episodes, 95% CIs.
Features: frozen ImageNet EfficientNet-Lite0.

Run: python examples/few_shot.py
"""

from __future__ import annotations

from _common import CLASSES, fashion_subset, features

from transferkit.fewshot import run_fewshot, split_classes


def main() -> None:
    x, y, seconds = features(fashion_subset("test", 100, seed=0))
    print(f"{len(y)} images → features in {seconds:.1f} s ({len(y) / seconds:.0f} img/s)")
    _, novel = split_classes(y, 5, seed=0)
    print(f"novel classes: {[CLASSES[c] for c in novel]}")
    methods = ["simpleshot", "fine-tune", "protonet", "matching", "relation", "maml", "reptile"]
    run_fewshot(x, y, novel, methods, way=5, shots=(1, 5), query=15, episodes=600, meta_episodes=1000)


if __name__ == "__main__":
    main()
