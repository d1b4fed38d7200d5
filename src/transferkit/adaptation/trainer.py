"""``adapt``: train a classifier on labelled source images that works on an unlabelled target domain.

Model: pretrained backbone → bottleneck (Linear-BN-ReLU, the MLP head's body) → classifier.
Each step sees a source batch and a target batch; the loss is the source cross-entropy plus
``trade_off ×`` the method's adaptation loss on the bottleneck features.

Model selection never looks at target labels: the kept epoch is the one with the best
*source* validation accuracy (``select="source-val"``) or the last (``select="last"``). If the
target set has labels they are used only to report target accuracy — the selected epoch's,
and separately the ``oracle`` (best over all epochs), which a real user could not pick.

With ``backbone_groups=0`` (default) the backbone is frozen and its features are computed
once; deeper adaptation trains the ``backbone_groups`` deepest layer groups at
``backbone_lr_scale × lr``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from transferkit.adaptation.base import adaptation_methods
from transferkit.backbones import ModelBackbone
from transferkit.engine.model import TransferModel, build_model
from transferkit.errors import ConfigError
from transferkit.strategies.freezing import apply_bn_policy, set_trainable


@dataclass(frozen=True)
class AdaptConfig:
    """Options of :func:`adapt`."""

    method: str = "dann"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-3
    trade_off: float = 1.0
    bottleneck: int = 256
    backbone_groups: int = 0
    backbone_lr_scale: float = 0.1
    select: str = "source-val"
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        adaptation_methods.get(self.method)
        if self.select not in ("source-val", "last"):
            raise ConfigError(f"select must be source-val or last, got {self.select!r}.")
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError("adapt needs epochs >= 1 and batch_size >= 2 (MMD and BatchNorm need pairs).")


@dataclass
class AdaptResult:
    model: TransferModel
    method: str
    history: list[dict[str, Any]]
    selected_epoch: int
    source_val_accuracy: float
    target_accuracy: float | None
    oracle_target_accuracy: float | None
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _cycle_batches(n: int, batch_size: int, steps: int, generator: torch.Generator) -> Iterator[Tensor]:
    order = torch.randperm(n, generator=generator)
    position = 0
    for _ in range(steps):
        if position + batch_size > n:
            order, position = torch.randperm(n, generator=generator), 0
        yield order[position : position + batch_size]
        position += batch_size


class _Inputs:
    """Source/target inputs as tensors: cached backbone features, or images loaded once into memory."""

    def __init__(self, dataset: Dataset, backbone: ModelBackbone | None, batch_size: int) -> None:
        from transferkit.inference import dataset_features

        if backbone is not None:
            self.x, self.y = dataset_features(backbone, dataset, batch_size)
        else:
            items = [dataset[i] for i in range(len(dataset))]
            self.x = torch.stack([torch.as_tensor(x) for x, _ in items])
            self.y = torch.as_tensor([int(y) for _, y in items])

    def __len__(self) -> int:
        return len(self.x)


def adapt(
    backbone: ModelBackbone,
    classes: list[str],
    source_train: Dataset,
    source_val: Dataset,
    target_train: Dataset,
    target_eval: Dataset | None = None,
    config: AdaptConfig | None = None,
    log: Callable[[str], None] = print,
    feature_cache: dict | None = None,
) -> AdaptResult:
    """Adapt from labelled ``source_train`` to unlabelled ``target_train`` with ``config.method``.

    Args:
        backbone: Pretrained backbone (see :func:`transferkit.create_backbone`).
        classes: Class names (index = label) shared by both domains.
        source_train, source_val: Labelled source images (eval transform; the frozen-backbone
            path caches their features).
        target_train: Target images; their labels, if any, are never read for training.
        target_eval: Labelled target images, only to report accuracy.
        feature_cache: A dict shared between calls with the same frozen backbone and datasets
            (e.g. comparing methods): the backbone features are then computed once.
    """
    config = config or AdaptConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    device = _device(config.device)
    model = build_model(backbone, len(classes), classes, "mlp", hidden=config.bottleneck, dropout=0.0)
    model.to(device)
    groups = model.backbone.layer_groups()
    frozen = config.backbone_groups == 0
    set_trainable(groups, min(config.backbone_groups, len(groups)))
    method = adaptation_methods.get(config.method)(config.bottleneck, len(classes)).to(device)

    cache = model.backbone if frozen else None
    shared = feature_cache if feature_cache is not None and frozen else {}

    def inputs(dataset: Dataset) -> _Inputs:
        key = (id(backbone), id(dataset))
        if key not in shared:
            shared[key] = _Inputs(dataset, cache, config.batch_size)
        return shared[key]

    src, src_val, tgt = (inputs(d) for d in (source_train, source_val, target_train))
    tgt_eval = inputs(target_eval) if target_eval is not None else None
    body, fc = model.head.body, model.head.fc  # bottleneck and classifier

    def features(x: Tensor) -> Tensor:
        return x.to(device) if frozen else model.backbone.forward_features(x.to(device))

    def accuracy(inputs: _Inputs, body_: nn.Module | None = None) -> float:
        body_ = body_ or model.head.body
        model.eval()
        body_.eval()
        correct = 0
        with torch.inference_mode():
            for start in range(0, len(inputs), 256):
                x, y = inputs.x[start : start + 256], inputs.y[start : start + 256]
                correct += int((fc(body_(features(x))).argmax(1).cpu() == y).sum())
        return correct / len(inputs)

    params = [
        {"params": [p for p in model.head.parameters()], "lr": config.lr},
        {"params": list(method.parameters()), "lr": config.lr},
    ]
    if not frozen:
        params.append(
            {
                "params": [p for p in model.backbone.parameters() if p.requires_grad],
                "lr": config.lr * config.backbone_lr_scale,
            }
        )
    optimizer = torch.optim.AdamW([g for g in params if g["params"]], weight_decay=config.weight_decay)
    steps = math.ceil(max(len(src), len(tgt)) / config.batch_size)
    two_stage = getattr(method, "two_stage", False)
    total = config.epochs * steps
    history: list[dict[str, Any]] = []
    best_state, best_val = None, -1.0
    for epoch in range(config.epochs):
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        model.train()
        method.train()
        apply_bn_policy(groups)
        losses, adapt_losses = [], []
        batches = zip(
            _cycle_batches(len(src), config.batch_size, steps, generator),
            _cycle_batches(len(tgt), config.batch_size, steps, generator),
        )
        for step, (i_s, i_t) in enumerate(batches):
            progress = (epoch * steps + step) / total
            f = features(torch.cat([src.x[i_s], tgt.x[i_t]]))
            z = body(f)
            logits = fc(z)
            n = len(i_s)
            cls_loss = F.cross_entropy(logits[:n], src.y[i_s].to(device))
            transfer = method(z[:n], z[n:], logits[:n], logits[n:], progress)
            loss = cls_loss + config.trade_off * transfer
            if not torch.isfinite(loss):
                raise ConfigError(f"{config.method}: the loss became {loss.item()}; lower --lr or --trade-off.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(cls_loss.detach()))
            adapt_losses.append(float(transfer.detach()))
        row = {
            "epoch": epoch,
            "stage": "source" if two_stage else "adapt",
            "class_loss": round(float(np.mean(losses)), 6),
            "adapt_loss": round(float(np.mean(adapt_losses)), 6),
            "source_val_acc": round(accuracy(src_val), 6),
        }
        if tgt_eval is not None:
            row["target_acc"] = round(accuracy(tgt_eval), 6)
        if hasattr(method, "last_domain_accuracy"):
            row["domain_acc"] = round(method.last_domain_accuracy, 4)
        history.append(row)
        log(
            f"epoch {epoch + 1}/{config.epochs} class loss {row['class_loss']:.4f} adapt loss "
            f"{row['adapt_loss']:.4f} | source val acc {row['source_val_acc']:.3f}"
            + (f" | target acc {row['target_acc']:.3f} (report only)" if "target_acc" in row else "")
        )
        if config.select == "last" or row["source_val_acc"] > best_val:
            best_val, best_state = row["source_val_acc"], copy.deepcopy(model.state_dict())
    assert best_state is not None
    model.load_state_dict(best_state)
    selected = len(history) - 1 if config.select == "last" else int(np.argmax([r["source_val_acc"] for r in history]))

    if two_stage:  # ADDA: adapt a copy of the bottleneck to the target, keep the classifier
        src_eval_acc = accuracy(src_val)

        def pairs(epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
            generator = torch.Generator().manual_seed(config.seed * 7919 + epoch)
            for i_s, i_t in zip(
                _cycle_batches(len(src), config.batch_size, steps, generator),
                _cycle_batches(len(tgt), config.batch_size, steps, generator),
            ):
                yield features(src.x[i_s]).detach(), features(tgt.x[i_t]).detach()

        def report(epoch: int, encoder: nn.Module, domain_acc: float) -> None:
            row = {"epoch": config.epochs + epoch, "stage": "adda", "domain_acc": round(domain_acc, 4)}
            if tgt_eval is not None:
                row["target_acc"] = round(accuracy(tgt_eval, encoder), 6)
            history.append(row)
            log(f"ADDA epoch {epoch + 1}/{config.epochs} discriminator acc {domain_acc:.3f}")

        model.eval()
        target_body = method.adapt_encoder(body, pairs, config.epochs, method.lr, report)
        extra_source_body = body
        model.head.body = target_body.eval()
        selected = len(history) - 1  # source labels cannot judge a target encoder: keep the last
        best_val = src_eval_acc

    else:
        extra_source_body = model.head.body
    target_acc = accuracy(tgt_eval) if tgt_eval is not None else None
    oracle = max((r["target_acc"] for r in history if "target_acc" in r), default=None)
    model.eval()
    return AdaptResult(
        model,
        config.method,
        history,
        selected,
        best_val,
        target_acc,
        oracle,
        time.perf_counter() - started,
        {"method_module": method, "source_body": extra_source_body},
    )
