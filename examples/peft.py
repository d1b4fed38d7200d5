"""PEFT on real data: LoRA, adapters, BitFit and visual prompts vs. feature extraction and full
fine-tuning, Fashion-MNIST 100 labelled images per class, ImageNet EfficientNet-Lite0, 96 px,
same epochs. Reports trainable parameters, test accuracy and wall time.

Run: python examples/peft.py
"""

from __future__ import annotations

import time

from _common import CLASSES, IMAGE_SIZE, fashion_subset

from transferkit.api import evaluate, make_data, train_classifier
from transferkit.backbones import create_backbone
from transferkit.engine.config import TrainConfig


def main() -> None:
    train, val, test = (
        fashion_subset("train", 100, seed=0),
        fashion_subset("train", 20, seed=1),
        fashion_subset("test", 100, seed=0),
    )
    runs = [
        ("feature-extraction", {}, 3e-3),
        ("lora", {"options": {"r": 4, "alpha": 8}}, 3e-3),
        ("adapter", {"options": {"reduction": 8}}, 3e-3),
        ("bitfit", {}, 3e-3),
        ("prompt", {"options": {"pad": 8}}, 3e-3),
        ("fine-tune", {}, 1e-3),
    ]
    print(f"{'strategy':20s} {'trainable':>10s} {'test acc':>9s} {'seconds':>8s}")
    for strategy, options, lr in runs:
        backbone = create_backbone("efficientnet_lite0")
        data = make_data(train, val, CLASSES, backbone.data_config, preset="light", test=test, image_size=IMAGE_SIZE)
        config = TrainConfig(epochs=4, lr=lr, batch_size=32, progress=False)
        started = time.perf_counter()
        result = train_classifier(data, backbone, strategy, config, strategy_options=options, log=lambda *_: None)
        seconds = time.perf_counter() - started
        accuracy = evaluate(result.model, data.test, config).accuracy
        trainable = result.history[-1]["trainable_params"]
        print(f"{strategy:20s} {trainable:10,d} {accuracy:9.4f} {seconds:8.1f}")


if __name__ == "__main__":
    main()
