"""``fit --unlabeled DIR``: a frozen backbone's features of every view, self-training, a saved model.

The unlabelled images' features are computed by the backbone with *every* layer group pooled
(one pass per view, kept in the feature store with ``cache_dir``: the same folder costs nothing
the next time, whatever layers the labelled subset picks) and the chosen groups' columns are
sliced out. ``--layers auto`` may add the input's HOG descriptor (a second, classical view; kept
only where cross-validation on the labelled images says it helps); the pool's views then carry it
too. The result is an ordinary :class:`TransferModel` (the backbone + the MLP or views head), saved as
``best.pt`` like any run, so ``predict`` and ``serve`` take it (``export`` too, unless it holds HOG).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import Dataset

from transferkit.backbones.multi_depth import HOG, MultiDepthBackbone, group_names, pick_layers
from transferkit.data.dataset import WithTransform
from transferkit.data.transforms import build_transforms
from transferkit.engine.cache import FeatureCache
from transferkit.engine.config import TrainConfig, frozen_autocast_dtype
from transferkit.engine.distributed import make_fabric
from transferkit.engine.feature_store import FeatureStore
from transferkit.engine.frozen_fit import write_frozen_run
from transferkit.engine.loop import FitResult
from transferkit.engine.metrics import classification_metrics
from transferkit.engine.model import TransferModel
from transferkit.seeding import seed_everything
from transferkit.semi.self_training import SelfTrainingConfig, Views, labeller, predict_views, self_train


def strong_transform(data) -> Any:
    """The labelled data's training transform with RandAugment added (FixMatch's strong view)."""
    cfg = data.data_config
    preset = data.preset if data.preset != "none" else "light"
    return build_transforms(preset, cfg.input_size, cfg.mean, cfg.std, True, "randaugment", cfg.interpolation)


def _features(cache: FeatureCache, views: int, seed: int) -> list[tuple[Tensor, Tensor]]:
    """(features, labels) of each of ``cache``'s views; view ``k`` under its own seed (reproducible, cacheable)."""
    out = []
    for k in range(views):
        seed_everything(seed, k, "semi")
        out.append(cache.train(k))
    return out


def _cache(backbone, datasets: list[Dataset], config: TrainConfig, store: bool) -> FeatureCache:
    fabric = make_fabric(config)
    backbone.to(fabric.device).eval()
    return FeatureCache(
        fabric, backbone, datasets, None, config.batch_size, config.num_workers, config.channels_last,
        config.progress, frozen_autocast_dtype(config.precision, fabric.device),
        FeatureStore(config.cache_dir) if store and config.cache_dir else None,
    )  # fmt: skip


def view_features(
    backbone, weak: Dataset, strong: Dataset, config: TrainConfig, views: int, store: bool, seed: int
) -> tuple[Views, Tensor]:
    """(features of the weak and ``views`` strong views, labels) of one dataset; ``seed`` draws the strong views."""
    datasets = [weak] + [strong] * views
    found = _features(_cache(backbone, datasets, config, store), len(datasets), seed)
    return Views(found[0][0], [f for f, _ in found[1:]]), found[0][1]


def view_blocks(chosen: MultiDepthBackbone) -> list[int] | None:
    """[network columns, HOG columns] when ``chosen`` adds the input's HOG descriptor (two views); else ``None``."""
    if HOG not in chosen.layers:
        return None
    widths = chosen.widths()
    return [sum(widths[:-1]), widths[-1]]


def fit_semi(
    chosen: MultiDepthBackbone,
    data,
    unlabeled: Dataset,
    config: TrainConfig,
    out: str | Path | None = None,
    log: Callable[[str], None] = print,
    cfg: SelfTrainingConfig | None = None,
    views: int = 1,
    run_config: dict[str, Any] | None = None,
) -> FitResult:
    """Self-train an MLP head on ``chosen``'s frozen features of ``data`` and the raw images ``unlabeled``."""
    cfg = cfg or SelfTrainingConfig(seed=config.seed)
    started = time.perf_counter()
    strong = strong_transform(data)
    every = MultiDepthBackbone(chosen, group_names(chosen) + [HOG] * (HOG in chosen.layers))
    plain = WithTransform(unlabeled, data.train_eval.transform)
    # the pool's views do not depend on the run's seed: runs on other labelled subsets or seeds reuse them
    pool, _ = view_features(every, plain, WithTransform(unlabeled, strong), config, views, True, seed=0)
    pick = lambda features: pick_layers(every, features, chosen.layers)  # noqa: E731
    pool = Views(pick(pool.weak), [pick(strong) for strong in pool.strong])
    base = data.train.base
    labelled, labels = view_features(
        chosen, data.train_eval, WithTransform(base, strong), config, views, False, config.seed
    )
    val = _cache(chosen, [data.val], config, store=False).train(0)
    extract_seconds = time.perf_counter() - started
    log(f"Features of {len(labels)} labelled, {len(pool)} unlabelled images, {1 + views} views, {extract_seconds:.0f}s")
    blocks = view_blocks(chosen)
    head, rounds, heads = self_train(labelled, labels, pool, val, len(data.classes), cfg, log, blocks)
    spec = {"name": "mlp", "hidden": cfg.hidden, "dropout": 0.2}
    if blocks:
        spec = {**spec, "name": "views", "blocks": blocks}
    model = TransferModel(chosen, head, data.classes, spec, data.data_config)
    probs = F.softmax(head(val[0]), 1).detach()
    metrics = classification_metrics(val[1].numpy(), probs.numpy(), config.top_k)
    seconds = time.perf_counter() - started
    best = next(i for i, h in enumerate(heads) if h is head)
    log(f"Kept round {best} (the best validation accuracy)")
    history = [{"epoch": r["round"], "stage": 0, **r} for r in rounds]  # one row per round, "epoch" = round
    semi = " → ".join(dict.fromkeys(labeller(r, cfg) for r in range(1, cfg.rounds + 1)))  # who labelled the pool
    facts = {"strategy": {"semi": semi, **dataclasses.asdict(cfg), "views": views}, **(run_config or {})}
    path = write_frozen_run(out, model, history, metrics, config, facts)
    images = len(labels) + len(pool) * (1 + views) + len(val[1])
    extra = {
        "rounds": rounds,
        "round_heads": heads,
        "cache_seconds": extract_seconds,
        "unlabeled": len(pool),
        "pool_probs": predict_views(head, pool),
    }  # the kept head's labels of the pool (for a student)
    return FitResult(model, history, best, metrics, path, seconds, images / max(extract_seconds, 1e-9), extra=extra)
