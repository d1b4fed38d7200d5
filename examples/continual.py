"""Continual transfer on real data: Fashion-MNIST as 5 class-incremental tasks of 2 classes
each, learned in sequence on frozen ImageNet EfficientNet-Lite0 features.

Run: python examples/continual.py
"""

from __future__ import annotations

from _common import fashion_subset, features

from transferkit.continual import class_incremental_tasks, run_continual


def main() -> None:
    x, y, _ = features(fashion_subset("train", 200, seed=0))
    xt, yt, _ = features(fashion_subset("test", 100, seed=0))
    tasks = class_incremental_tasks(x, y, xt, yt, 5, seed=0)
    options = {"replay": {"capacity": 200}, "ewc": {"lam": 1000.0}, "lwf": {"alpha": 1.0}}
    print(f"{'method':10s} {'avg acc':>8s} {'forgetting':>10s}")
    for method in ("fine-tune", "ewc", "lwf", "replay"):
        r = run_continual(tasks, method, 10, epochs=5, method_options=options.get(method), log=lambda _: None)
        print(f"{method:10s} {r.average_accuracy:8.4f} {r.forgetting:10.4f}")


if __name__ == "__main__":
    main()
