"""Continual transfer on real data: Fashion-MNIST as 5 class-incremental tasks of 2 classes
each, learned in sequence on frozen ImageNet EfficientNet-Lite0 features; progressive networks
grow one column of the backbone's top 2 layer groups per task over the frozen bottom's maps.

Run: python examples/continual.py
"""

from __future__ import annotations

from _common import eval_view, fashion_subset, features

from transferkit.backbones import create_backbone
from transferkit.continual import class_incremental_tasks, run_continual
from transferkit.continual.progressive import column_segments, run_progressive, segment_widths
from transferkit.inference import dataset_features

GROUPS = 2


def progressive(train, test) -> list:
    backbone = create_backbone("efficientnet_lite0")
    bottom, segments = column_segments(backbone, GROUPS)
    cut = len(backbone.layer_groups()) - GROUPS
    x, y = dataset_features(backbone, eval_view(train, backbone), split=cut)
    xt, yt = dataset_features(backbone, eval_view(test, backbone), split=cut)
    tasks = class_incremental_tasks(x, y, xt, yt, 5, seed=0)
    widths = segment_widths(bottom, segments, 96)
    return list(run_progressive(tasks, segments, widths, epochs=5, log=lambda _: None))


def main() -> None:
    train, test = fashion_subset("train", 200, seed=0), fashion_subset("test", 100, seed=0)
    x, y, _ = features(train)
    xt, yt, _ = features(test)
    tasks = class_incremental_tasks(x, y, xt, yt, 5, seed=0)
    options = {"replay": {"capacity": 200}, "ewc": {"lam": 1000.0}, "lwf": {"alpha": 1.0}}
    results = [
        run_continual(tasks, method, 10, epochs=5, method_options=options.get(method), log=lambda _: None)
        for method in ("fine-tune", "ewc", "lwf", "replay")
    ]
    results += progressive(train, test)
    print(f"{'method':26s} {'avg acc':>8s} {'forgetting':>10s} {'seconds':>8s}")
    for r in results:
        print(f"{r.method:26s} {r.average_accuracy:8.4f} {r.forgetting:10.4f} {r.seconds:8.1f}")


if __name__ == "__main__":
    main()
