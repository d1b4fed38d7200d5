"""Knowledge distillation on real data: a fine-tuned EfficientNet-Lite0 teacher (3.4 M parameters)
into a MobileNetV3-Small-0.5 student trained from scratch (0.4 M), vs. the same student trained
on labels alone. Fashion-MNIST, 200 labelled images per class, 96 px.

Run: python examples/distill.py
"""

from __future__ import annotations

import torch
from _common import CLASSES, fashion_subset

from transferkit.api import evaluate, make_data, train_classifier
from transferkit.backbones import create_backbone
from transferkit.engine.config import TrainConfig
from transferkit.engine.distill import distill
from transferkit.engine.model import build_model

SIZE = 96


def main() -> None:
    train, val, test = (
        fashion_subset("train", 200, seed=0),
        fashion_subset("train", 30, seed=1),
        fashion_subset("test", 100, seed=0),
    )
    teacher_bb = create_backbone("efficientnet_lite0")
    data = make_data(train, val, CLASSES, teacher_bb.data_config, preset="light", test=test, image_size=SIZE)
    config = TrainConfig(epochs=6, lr=1e-3, batch_size=64, progress=False)
    teacher = train_classifier(data, teacher_bb, "fine-tune", config, log=lambda *_: None).model
    print(
        f"teacher  {sum(p.numel() for p in teacher.parameters()):>9,} params  "
        f"test acc {evaluate(teacher, data.test, config).accuracy:.4f}"
    )
    for title, alpha in (("student, labels only", 1.0), ("student, distilled", 0.3)):
        torch.manual_seed(0)
        student = build_model(
            create_backbone("mobilenetv3_small_050", weights=None), 10, CLASSES, data_config=data.data_config
        )
        result = distill(
            teacher,
            student,
            data.train,
            data.val,
            epochs=15,
            lr=3e-3,
            batch_size=64,
            alpha=alpha,
            temperature=4.0,
            log=lambda _: None,
        )
        accuracy = evaluate(result.student, data.test, config).accuracy
        print(
            f"{title:22s} {sum(p.numel() for p in result.student.parameters()):>9,} params  test acc {accuracy:.4f}"
            f"  agreement with teacher {result.teacher_agreement:.4f}"
        )


if __name__ == "__main__":
    main()
