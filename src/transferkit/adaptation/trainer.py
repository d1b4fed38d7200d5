"""``adapt``: train a classifier on labelled source images that works on an unlabelled target domain.

Model: pretrained backbone → bottleneck (Linear-BN-ReLU, the MLP head's body) → classifier.
Each step sees a source batch and a target batch; the loss is the source cross-entropy plus
``trade_off ×`` the method's adaptation loss on the bottleneck features. Both stages (and
ADDA's second, adversarial one) are :class:`~transferkit.engine.trainer.TrainingTask`s run by
the one training loop, so precision, the non-finite-loss guard, callbacks and seeding are shared.

Model selection never looks at target labels: the kept epoch is the one with the best
*source* validation accuracy (``select="source-val"``) or the last (``select="last"``). If the
target set has labels they are used only to report target accuracy — the selected epoch's,
and separately the ``oracle`` (best over all epochs), which a real user could not pick.

With ``backbone_groups=0`` (default) the backbone is frozen and its features are computed
once; deeper adaptation trains the ``backbone_groups`` deepest layer groups at
``backbone_lr_scale × lr``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from transferkit.adaptation.base import AdaptationMethod, adaptation_methods
from transferkit.backbones import ModelBackbone
from transferkit.engine.callbacks import BestWeights, Callback, ConsoleLog
from transferkit.engine.distributed import local_fabric
from transferkit.engine.model import TransferModel, build_model
from transferkit.engine.state import TrainState, best_index
from transferkit.engine.trainer import StepOutput, Trainer, TrainingTask
from transferkit.errors import ConfigError
from transferkit.seeding import generator
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
    precision: str = "32-true"

    def __post_init__(self) -> None:
        adaptation_methods.get(self.method)
        if self.precision not in ("32-true", "bf16-mixed", "16-mixed"):
            raise ConfigError(f"precision must be 32-true, bf16-mixed or 16-mixed, got {self.precision!r}.")
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


def _cycle_batches(n: int, batch_size: int, steps: int, rng: torch.Generator) -> Iterator[Tensor]:
    order = torch.randperm(n, generator=rng)
    position = 0
    for _ in range(steps):
        if position + batch_size > n:
            order, position = torch.randperm(n, generator=rng), 0
        yield order[position : position + batch_size]
        position += batch_size


class _Inputs:
    """Source/target inputs as tensors: cached backbone features, or images loaded once into memory."""

    def __init__(self, dataset: Dataset, backbone: ModelBackbone | None, batch_size: int) -> None:
        from transferkit.engine.cache import dataset_features

        if backbone is not None:
            self.x, self.y = dataset_features(backbone, dataset, batch_size)
        else:
            items = [dataset[i] for i in range(len(dataset))]
            self.x = torch.stack([torch.as_tensor(x) for x, _ in items])
            self.y = torch.as_tensor([int(y) for _, y in items])

    def __len__(self) -> int:
        return len(self.x)


class _Domains:
    """The model, the source/target inputs and how to score a body on labelled inputs."""

    def __init__(self, model, frozen, src, src_val, tgt, tgt_eval, device) -> None:
        self.model, self.frozen, self.device = model, frozen, device
        self.src, self.src_val, self.tgt, self.tgt_eval = src, src_val, tgt, tgt_eval

    def features(self, x: Tensor) -> Tensor:
        return x.to(self.device) if self.frozen else self.model.backbone.forward_features(x.to(self.device))

    def accuracy(self, inputs: _Inputs, body: nn.Module | None = None) -> float:
        body = body or self.model.head.body
        self.model.eval()
        body.eval()
        correct = 0
        with torch.inference_mode():
            for start in range(0, len(inputs), 256):
                x, y = inputs.x[start : start + 256], inputs.y[start : start + 256]
                correct += int((self.model.head.fc(body(self.features(x))).argmax(1).cpu() == y).sum())
        return correct / len(inputs)

    def pairs(self, seed: int, epoch: int, batch_size: int, steps: int, stream: str = "epoch") -> Iterator[Any]:
        """``steps`` (source indices, target indices) batches, cycling the smaller domain; seeded by the epoch."""
        rng = generator(seed, epoch, stream)
        source = _cycle_batches(len(self.src), batch_size, steps, rng)
        return zip(source, _cycle_batches(len(self.tgt), batch_size, steps, rng))


class AdaptationTask(TrainingTask):
    """Source cross-entropy + ``trade_off`` × the method's adaptation loss on the bottleneck."""

    def __init__(self, domains: _Domains, method: AdaptationMethod, config: AdaptConfig) -> None:
        self.domains, self.method, self.config = domains, method, config
        self.name = f"adapt ({config.method})"
        self.steps = math.ceil(max(len(domains.src), len(domains.tgt)) / config.batch_size)
        self.class_losses: list[float] = []
        self.adapt_losses: list[float] = []

    def setup(self, trainer: Trainer) -> None:
        model, config = self.domains.model, self.config
        params = [
            {"params": list(model.head.parameters()), "lr": config.lr},
            {"params": list(self.method.parameters()), "lr": config.lr},
        ]
        if not self.domains.frozen:
            trained = [p for p in model.backbone.parameters() if p.requires_grad]
            params.append({"params": trained, "lr": config.lr * config.backbone_lr_scale})
        optimizer = torch.optim.AdamW([g for g in params if g["params"]], weight_decay=config.weight_decay)
        self.module, self.optimizer = trainer.setup(nn.ModuleDict({"model": model, "method": self.method}), optimizer)

    def batches(self, epoch: int) -> Iterator[tuple[float, Tensor, Tensor]]:
        self.domains.model.train()
        self.method.train()
        apply_bn_policy(self.domains.model.backbone.layer_groups())
        self.class_losses, self.adapt_losses = [], []
        total = self.config.epochs * self.steps
        pairs = self.domains.pairs(self.config.seed, epoch, self.config.batch_size, self.steps)
        return (((epoch * self.steps + step) / total, i_s, i_t) for step, (i_s, i_t) in enumerate(pairs))

    def training_step(self, batch: tuple[float, Tensor, Tensor]) -> StepOutput:
        progress, i_s, i_t = batch
        d, head = self.domains, self.domains.model.head
        z = head.body(d.features(torch.cat([d.src.x[i_s], d.tgt.x[i_t]])))
        logits, n = head.fc(z), len(i_s)
        labels = d.src.y[i_s].to(d.device)
        class_loss = F.cross_entropy(logits[:n], labels)
        transfer = self.method(z[:n], z[n:], logits[:n], logits[n:], progress)
        self.class_losses.append(float(class_loss.detach()))
        self.adapt_losses.append(float(transfer.detach()))
        return StepOutput(class_loss + self.config.trade_off * transfer, n, logits[:n], labels)

    def validate(self, epoch: int) -> dict[str, Any]:
        row: dict[str, Any] = {
            "class_loss": round(float(np.mean(self.class_losses)), 6),
            "adapt_loss": round(float(np.mean(self.adapt_losses)), 6),
            "source_val_acc": round(self.domains.accuracy(self.domains.src_val), 6),
        }
        if self.domains.tgt_eval is not None:
            row["target_acc"] = round(self.domains.accuracy(self.domains.tgt_eval), 6)
        if hasattr(self.method, "last_domain_accuracy"):
            row["domain_acc"] = round(self.method.last_domain_accuracy, 4)
        return row

    def end_epoch(self, row: dict[str, Any]) -> None:
        row["stage"] = "source" if getattr(self.method, "two_stage", False) else "adapt"

    def checkpoint(self) -> dict[str, Any]:
        """Model, the method's own modules (a discriminator) and the optimizer: all an exact resume needs."""
        return {**super().checkpoint(), "method": self.method.state_dict()}

    def resume_weights(self, payload: dict[str, Any]) -> None:
        self.load_weights(payload["state_dict"])
        self.method.load_state_dict(payload["method"])

    def weights(self) -> dict[str, Tensor]:
        return self.domains.model.state_dict()

    def load_weights(self, weights: dict[str, Tensor]) -> None:
        self.domains.model.load_state_dict(weights)

    def describe(self, row: dict[str, Any], improved: bool) -> str:
        target = f" | target acc {row['target_acc']:.3f} (report only)" if "target_acc" in row else ""
        return (
            f"epoch {row['epoch'] + 1}/{self.config.epochs} class loss {row['class_loss']:.4f} adapt loss "
            f"{row['adapt_loss']:.4f} | source val acc {row['source_val_acc']:.3f}{target}"
        )


class TargetEncoderTask(TrainingTask):
    """ADDA's second stage: a target encoder trained to fool a domain discriminator (see ``ADDA``).

    Each step first updates the discriminator with its own optimizer (as Lightning's manual
    optimisation does for GANs), then returns the encoder's inverted-label loss to the trainer.
    """

    name = "adapt (adda, target encoder)"

    def __init__(self, domains: _Domains, method: Any, config: AdaptConfig, steps: int) -> None:
        self.domains, self.method, self.config, self.steps = domains, method, config, steps
        self.source_encoder = domains.model.head.body.eval().requires_grad_(False)
        self.encoder = method.target_encoder(self.source_encoder)
        self.correct, self.seen = 0.0, 0

    def setup(self, trainer: Trainer) -> None:
        lr = self.method.lr
        self.opt_d = torch.optim.Adam(self.method.discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
        optimizer = torch.optim.Adam(self.encoder.parameters(), lr=lr, betas=(0.5, 0.999))
        self.module, self.optimizer = trainer.setup(self.encoder, optimizer)

    def batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        self.correct, self.seen = 0.0, 0
        d = self.domains
        pairs = d.pairs(self.config.seed, epoch, self.config.batch_size, self.steps, stream="loader")
        with torch.no_grad():
            return [(d.features(d.src.x[i_s]), d.features(d.tgt.x[i_t])) for i_s, i_t in pairs]

    def training_step(self, batch: tuple[Tensor, Tensor]) -> StepOutput:
        x_s, x_t = batch
        correct, seen = self.method.discriminator_step(self.source_encoder, self.encoder, x_s, x_t, self.opt_d)
        self.correct, self.seen = self.correct + correct, self.seen + seen
        return StepOutput(self.method.encoder_loss(self.encoder, x_t), len(x_t))

    def validate(self, epoch: int) -> dict[str, Any]:
        row: dict[str, Any] = {"domain_acc": round(self.correct / max(self.seen, 1), 4)}
        if self.domains.tgt_eval is not None:
            row["target_acc"] = round(self.domains.accuracy(self.domains.tgt_eval, self.encoder), 6)
        return row

    def describe(self, row: dict[str, Any], improved: bool) -> str:
        return f"ADDA epoch {row['epoch'] + 1}/{self.config.epochs} discriminator acc {row['domain_acc']:.3f}"


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _domains(model, frozen, backbone, datasets, config: AdaptConfig, shared: dict | None, device) -> _Domains:
    """The four datasets as tensors; frozen-backbone features come from (and go to) ``shared``."""
    shared = shared if shared is not None and frozen else {}

    def inputs(dataset: Dataset | None) -> _Inputs | None:
        if dataset is None:
            return None
        key = (id(backbone), id(dataset))
        if key not in shared:
            shared[key] = _Inputs(dataset, model.backbone if frozen else None, config.batch_size)
        return shared[key]

    return _Domains(model, frozen, *(inputs(d) for d in datasets), device)


def _selected(state: TrainState) -> tuple[int, float]:
    """The kept epoch's index and its source validation accuracy."""
    index = best_index(state.history, state.monitor, state.mode)
    return index, state.history[index]["source_val_acc"]


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
    callbacks: Sequence[Callback] = (),
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
        callbacks: More callbacks of the training loop for the (first) stage, e.g.
            ``Checkpointer(out, resume=True)`` to save every epoch and continue a killed run exactly.
    """
    config = config or AdaptConfig()
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    fabric = local_fabric(_device(config.device), config.precision)
    model = build_model(backbone, len(classes), classes, "mlp", hidden=config.bottleneck, dropout=0.0)
    model.to(fabric.device)
    frozen = config.backbone_groups == 0
    groups = model.backbone.layer_groups()
    set_trainable(groups, min(config.backbone_groups, len(groups)))
    method = adaptation_methods.get(config.method)(config.bottleneck, len(classes)).to(fabric.device)
    datasets = (source_train, source_val, target_train, target_eval)
    domains = _domains(model, frozen, backbone, datasets, config, feature_cache, fabric.device)
    task = AdaptationTask(domains, method, config)
    state = TrainState("source_val_acc" if config.select == "source-val" else None, "max")
    Trainer(fabric, [BestWeights(), ConsoleLog(), *callbacks], seed=config.seed, log=log).fit(
        task, config.epochs, state
    )
    selected, best_val = _selected(state)
    history, source_body = state.history, model.head.body
    if getattr(method, "two_stage", False):  # ADDA: adapt a copy of the bottleneck to the target, keep the classifier
        best_val = domains.accuracy(domains.src_val)
        model.eval()
        encoder = TargetEncoderTask(domains, method, config, task.steps)
        stage2 = Trainer(fabric, [ConsoleLog()], seed=config.seed, log=log).fit(encoder, config.epochs)
        history = history + [{**r, "epoch": config.epochs + r["epoch"], "stage": "adda"} for r in stage2.history]
        model.head.body = encoder.encoder.eval()
        selected = len(history) - 1  # source labels cannot judge a target encoder: keep the last
    target_acc = domains.accuracy(domains.tgt_eval) if domains.tgt_eval is not None else None
    oracle = max((r["target_acc"] for r in history if "target_acc" in r), default=None)
    model.eval()
    seconds = time.perf_counter() - started
    extra = {"method_module": method, "source_body": source_body}
    return AdaptResult(model, config.method, history, selected, best_val, target_acc, oracle, seconds, extra)
