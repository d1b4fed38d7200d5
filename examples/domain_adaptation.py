"""Domain adaptation on real data: Fashion-MNIST (source) → its photographic negative (target).

Source: 200 labelled training images per class. Target: 200 unlabelled test images per
class with inverted intensities (a strong, realistic shift: the same objects, light on dark
vs. dark on light). Frozen ImageNet EfficientNet-Lite0 features + bottleneck; model selection
on source validation only; target labels used only to report accuracy.

Run: python examples/domain_adaptation.py
"""

from __future__ import annotations

import time

import torch
from _common import CLASSES, eval_view, fashion_subset

from transferkit.adaptation import AdaptConfig, adapt, domain_shift
from transferkit.backbones import create_backbone
from transferkit.data.dataset import TensorImageDataset
from transferkit.inference import dataset_features


def negative(dataset: TensorImageDataset) -> TensorImageDataset:
    return TensorImageDataset(255 - dataset.images, dataset.labels)


def main() -> None:
    torch.manual_seed(0)
    backbone = create_backbone("efficientnet_lite0")
    source, source_val = fashion_subset("train", 200, seed=0), fashion_subset("train", 30, seed=1)
    target = negative(fashion_subset("test", 200, seed=2))
    views = [eval_view(d, backbone) for d in (source, source_val, target)]
    f_s, _ = dataset_features(backbone, views[0])
    f_t, _ = dataset_features(backbone, views[2])
    shift = domain_shift(f_s.numpy(), f_t.numpy())
    print("shift of backbone features: " + ", ".join(f"{k} {v:.3f}" for k, v in shift.items()))
    cache: dict = {}  # the frozen backbone's features, computed once for all methods
    print(f"\n{'method':12s} {'source val':>10s} {'target acc':>10s} {'oracle*':>8s} {'seconds':>8s}")
    for method in ("source-only", "dan", "coral", "dann", "cdan", "adda"):
        started = time.perf_counter()
        cfg = AdaptConfig(method=method, epochs=20, batch_size=64, lr=1e-3, select="source-val")
        result = adapt(
            backbone, CLASSES, views[0], views[1], views[2], views[2], cfg, log=lambda _: None, feature_cache=cache
        )
        print(
            f"{method:12s} {result.source_val_accuracy:10.4f} {result.target_accuracy:10.4f} "
            f"{result.oracle_target_accuracy:8.4f} {time.perf_counter() - started:8.1f}"
        )
    print("* oracle: best target accuracy over epochs, picked with target labels (not usable in practice)")


if __name__ == "__main__":
    main()
