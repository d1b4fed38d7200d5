"""Per-layer probes, CKA and multi-source transfer on real data (Fashion-MNIST, 100 images/class).

1. Linear-probe accuracy after each layer group of ImageNet EfficientNet-Lite0 (Yosinski-style curve).
2. Multi-source: three sources — Lite0's pooled features, Lite0's middle stage (blocks.4), and a
   randomly initialised ResNet-18 — combined by concatenation, LogME weights, and selection.
3. CKA between the pretrained network and the same network after 3 epochs of fine-tuning, per group.

Run: python examples/layers_and_sources.py
"""

from __future__ import annotations

import copy

import torch
from _common import CLASSES, IMAGE_SIZE, eval_view, fashion_subset

from transferkit.api import make_data, train_classifier
from transferkit.backbones import create_backbone
from transferkit.engine.config import TrainConfig
from transferkit.inference import dataset_features
from transferkit.interpret import cka_by_layer, group_output_layers, probe_layers
from transferkit.transferability.multisource import combine_sources


def main() -> None:
    train = fashion_subset("train", 100, seed=0)
    lite0 = create_backbone("efficientnet_lite0")
    view = eval_view(train, lite0)
    print("1. linear probe after each layer group (5-fold CV)")
    for name, accuracy in probe_layers(lite0, view):
        print(f"   {name:24s} {accuracy:.4f}")

    print("\n2. multi-source")
    sources = {}
    sources["lite0 pooled"], labels = dataset_features(lite0, view)
    sources["lite0 blocks.4"], _ = dataset_features(lite0, view, layer="blocks.4")
    torch.manual_seed(0)
    resnet = create_backbone("resnet18", weights=None)
    sources["resnet18 random"], _ = dataset_features(resnet, eval_view(train, resnet))
    sources = {k: v.numpy() for k, v in sources.items()}
    for mode in ("concat", "weighted", "selective"):
        _, result = combine_sources(sources, labels.numpy(), mode, log=lambda _: None)
        weights = ", ".join(f"{k} {v:.2f}" for k, v in result.weights.items())
        print(f"   {mode:9s} accuracy {result.cv_accuracy:.4f}  weights: {weights}")
    print("   alone: " + ", ".join(f"{k} {v:.4f}" for k, v in result.single_source_accuracy.items()))

    print("\n3. CKA pretrained vs fine-tuned (3 epochs, 100 images/class)")
    pretrained = copy.deepcopy(lite0)
    data = make_data(train, fashion_subset("train", 20, seed=1), CLASSES, lite0.data_config, image_size=IMAGE_SIZE)
    result = train_classifier(
        data, lite0, "fine-tune", TrainConfig(epochs=3, lr=1e-3, progress=False), log=lambda *_: None
    )
    images = torch.stack([view[i][0] for i in range(300)])
    layers = group_output_layers(pretrained)
    for name, value in cka_by_layer(pretrained, result.model.backbone, layers, images).items():
        print(f"   {name:24s} {value:.4f}")


if __name__ == "__main__":
    main()
