"""High-level entry points: a folder of images in, a trained classifier and its numbers out."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from transferkit.backbones import DataConfig, ModelBackbone, create_backbone
from transferkit.backbones.multi_depth import (
    HOG,
    MultiDepthBackbone,
    group_names,
    layer_blocks,
    pick_layers,
    resolve_layers,
)
from transferkit.data import (
    ImageFileDataset,
    Splits,
    WithTransform,
    build_transforms,
    compute_mean_std,
    find_splits,
    verify_images,
)
from transferkit.data.images import DEFAULT_MAX_PIXELS
from transferkit.engine.cache import extract_features
from transferkit.engine.config import TrainConfig, frozen_autocast_dtype, trains_on_gpu
from transferkit.engine.distributed import dataset_logits, make_fabric
from transferkit.engine.frozen_fit import fit_frozen
from transferkit.engine.loop import FitResult, fit
from transferkit.engine.metrics import Metrics, classification_metrics
from transferkit.engine.model import TransferModel, build_model
from transferkit.errors import ConfigError
from transferkit.semi import FIXMATCH, SEMI_STRATEGIES, STUDENT
from transferkit.semi.fixmatch import FixMatchConfig
from transferkit.strategies import create_strategy
from transferkit.strategies.layer_selection import select_layers
from transferkit.strategies.sklearn_probe import CLASSICAL_BASELINES

# name → (classical feature extractor or None for the chosen backbone, classifier)
SKLEARN_STRATEGIES = {
    "sklearn-logreg": (None, "logreg"),
    "sklearn-svm": (None, "svm"),
    **{name: (extractor, "svm") for name, extractor in CLASSICAL_BASELINES.items()},
}
Normalize = Literal["backbone", "dataset"]


@dataclass
class Data:
    """Datasets ready for training.

    ``train`` is augmented; ``train_eval`` holds the same images with the eval transform; ``val``, ``test``.
    """

    classes: list[str]
    train: Dataset
    train_eval: Dataset
    val: Dataset
    test: Dataset | None
    data_config: DataConfig
    splits: Splits | None = None
    preset: str = "light"
    unlabeled: Dataset | None = None  # raw unlabelled images (``fit --unlabeled``): self-training uses them

    def summary(self) -> str:
        counts = self.splits.counts("train") if self.splits else None
        per_class = ", ".join(f"{c}: {n}" for c, n in zip(self.classes, counts)) if counts else ""
        return (
            f"{len(self.classes)} classes, {len(self.train)} train / {len(self.val)} val"
            f"{f' / {len(self.test)} test' if self.test is not None else ''} images"
            f"{f' ({per_class})' if per_class else ''}"
        )


def make_data(
    train: Dataset,
    val: Dataset,
    classes: list[str],
    data_config: DataConfig,
    preset: str = "light",
    auto_augment: str = "none",
    test: Dataset | None = None,
    normalize: Normalize = "backbone",
    image_size: int | None = None,
) -> Data:
    """Attach train/eval transforms to raw datasets (items: (3, H, W) float images in [0, 1], label).

    ``normalize="dataset"`` replaces the backbone's mean/std by the training set's own.
    """
    size = image_size or data_config.input_size
    mean, std = data_config.mean, data_config.std
    if normalize == "dataset":
        resize = build_transforms("none", size, (0.0,) * 3, (1.0,) * 3, train=False)
        mean, std = compute_mean_std(WithTransform(train, resize))
    elif normalize != "backbone":
        raise ConfigError(f"normalize must be 'backbone' or 'dataset', got {normalize!r}.")
    config = DataConfig(size, tuple(mean), tuple(std), data_config.interpolation)
    train_tf = build_transforms(preset, size, mean, std, True, auto_augment, config.interpolation)  # type: ignore[arg-type]
    eval_tf = build_transforms(preset, size, mean, std, False, interpolation=config.interpolation)
    return Data(
        classes,
        WithTransform(train, train_tf),
        WithTransform(train, eval_tf),
        WithTransform(val, eval_tf),
        WithTransform(test, eval_tf) if test is not None else None,
        config,
        preset=preset,
    )


def rebind(data: Data, data_config: DataConfig, image_size: int | None = None) -> Data:
    """The same (already checked) images with another backbone's size and normalisation."""
    result = make_data(
        data.train.base,  # type: ignore[attr-defined]
        data.val.base,  # type: ignore[attr-defined]
        data.classes,
        data_config,
        data.preset,
        test=data.test.base if data.test is not None else None,  # type: ignore[attr-defined]
        image_size=image_size,
    )
    result.splits, result.unlabeled = data.splits, data.unlabeled
    return result


def load_data(
    data: str | Path,
    data_config: DataConfig,
    preset: str = "light",
    auto_augment: str = "none",
    normalize: Normalize | None = None,
    image_size: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    on_bad_image: Literal["skip", "error"] = "skip",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Data:
    """Find, check and wrap a folder (or CSV) of labelled images; see :func:`transferkit.data.find_splits`.

    Every image is decoded once up front: unreadable ones are skipped with a warning, or
    stop the run naming the file (``on_bad_image="error"``).
    """
    splits = find_splits(data, val_fraction, seed)
    checked = {
        name: verify_images(getattr(splits, name), on_bad_image, max_pixels) for name in ("train", "val", "test")
    }
    splits = Splits(splits.classes, checked["train"], checked["val"], checked["test"])
    normalize = normalize or ("dataset" if preset == "microscopy" else "backbone")
    result = make_data(
        ImageFileDataset(splits.train, max_pixels=max_pixels),
        ImageFileDataset(splits.val, max_pixels=max_pixels),
        splits.classes,
        data_config,
        preset,
        auto_augment,
        ImageFileDataset(splits.test, max_pixels=max_pixels) if splits.test else None,
        normalize,
        image_size,
    )
    result.splits = splits
    return result


def load_unlabeled(
    folder: str | Path, on_bad_image: Literal["skip", "error"] = "skip", max_pixels: int = DEFAULT_MAX_PIXELS
) -> Dataset:
    """Every image under ``folder`` (any depth, any size or mode: decoded like the labelled ones), label -1."""
    from transferkit.inference import list_images

    samples = [(path, -1) for path in list_images([folder])]
    return ImageFileDataset(verify_images(samples, on_bad_image, max_pixels), max_pixels=max_pixels)


PEFT_STRATEGIES = ("peft", "lora", "adapter", "bitfit", "prompt")


STRATEGY_OPTIONS = {
    "partial": {"groups"},
    "discriminative": {"ratio"},
    "progressive": {"epochs_per_stage", "ratio"},
    "lp-ft": {"probe_epochs", "ft_lr_scale", "freeze_bn"},
    FIXMATCH: {field.name for field in dataclasses.fields(FixMatchConfig)},
}


def training_images(data: str | Path, seed: int = 0):
    """``(backbone, image_size) -> (training images with its evaluation transform, labels)`` for ``data``.

    The images are found and checked once, on the first call; each backbone then gets its own
    transforms. The input of :func:`transferkit.transferability.rank_backbones`.
    """
    loaded: list[Data] = []

    def images(backbone: ModelBackbone, image_size: int | None = None) -> tuple[Dataset, np.ndarray]:
        if not loaded:
            loaded.append(load_data(data, backbone.data_config, preset="none", image_size=image_size, seed=seed))
        samples = loaded[0].splits.train if loaded[0].splits else []
        labels = np.asarray([label for _, label in samples])
        return rebind(loaded[0], backbone.data_config, image_size).train_eval, labels

    return images


def strategy_option_names(strategy: str) -> set[str]:
    """The options ``strategy`` takes (PEFT strategies take their method's options as ``options``)."""
    if strategy in PEFT_STRATEGIES:
        return {"method", "options"} if strategy == "peft" else {"options"}
    return STRATEGY_OPTIONS.get(strategy, set())


def _strategy_options(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against what ``strategy`` takes: a misspelled one is an error naming the valid ones."""
    known = strategy_option_names(strategy)
    if strategy in PEFT_STRATEGIES:
        options = {**options, "options": options.get("options") or options.get("peft_options") or {}}
    unknown = sorted(k for k in options if k not in known and k != "peft_options")
    if unknown:
        valid = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"Unknown option(s) {unknown} for strategy {strategy!r}. Valid options: {valid}.")
    return {k: v for k, v in options.items() if k in known and v is not None}


def train_classifier(
    data: Data,
    backbone: str | ModelBackbone = "efficientnet_lite0",
    strategy: str = "feature-extraction",
    config: TrainConfig | None = None,
    weights: str | Path | None = "imagenet",
    head: str = "linear",
    head_options: dict[str, Any] | None = None,
    strategy_options: dict[str, Any] | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    log=print,
    report: bool = True,
    layers: str | Sequence[str] | None = None,
    time_budget: str | float = 600.0,
    plan: str | Path | None = None,
) -> FitResult:
    """Train a classifier on ``data`` with a pretrained backbone and a transfer strategy.

    ``strategy="auto"`` tries a budgeted set of recipes (classical baselines, multi-depth features,
    fine-tuning recipes and an ensemble of the best two) within ``time_budget`` seconds and keeps
    the best on validation (see :mod:`transferkit.auto`); ``plan`` (an earlier auto run's folder)
    replays that run's input sizes and skips instead of timing this machine. Otherwise ``strategy`` is a registered
    strategy (``feature-extraction``, ``fine-tune``, ``partial``, ``discriminative``, ``progressive``,
    ``lp-ft``, PEFT), ``sklearn-logreg``/``sklearn-svm``
    (frozen features → scikit-learn), or a classical baseline with no pretrained network:
    ``sklearn-hog-svm`` / ``sklearn-pixels-svm`` (HOG descriptors / raw pixels → RBF SVM).
    ``layers`` (``"auto"``, ``"last"``, group names) pools features from several depths.
    With ``out``, the run folder also gets ``report.html`` and ``report.md`` (``report=False`` skips
    them). When ``data.test`` exists it is scored once, after training and selection.
    """
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    if strategy == "auto":
        return _fit_auto(data, backbone, config, weights, out, time_budget, log, report, resume, plan)
    if plan is not None:
        raise ConfigError(f"--plan replays an auto run's decisions; strategy {strategy!r} has none. Leave out --plan.")
    bb = create_backbone(backbone, weights=weights) if isinstance(backbone, str) else backbone
    if strategy in SEMI_STRATEGIES and data.unlabeled is None:
        raise ConfigError(f"Strategy {strategy!r} learns from unlabelled images: give them with --unlabeled DIR.")
    if strategy not in SEMI_STRATEGIES and data.unlabeled is not None:
        raise ConfigError(
            f"Strategy {strategy!r} would ignore the {len(data.unlabeled)} unlabelled images: use --strategy auto "
            f"(which adds {' and '.join(SEMI_STRATEGIES)}) or one of them, or leave out --unlabeled."
        )
    source, classifier = SKLEARN_STRATEGIES.get(strategy, (None, None))
    if source is not None:
        bb = create_backbone(source)
        data = rebind(data, bb.data_config)
    if strategy == FIXMATCH:
        options = _strategy_options(strategy, strategy_options or {})
        result = _fit_fixmatch(data, bb, config, head, head_options, options, layers, out, resume, log)
        return _score_and_report(result, data, config, strategy, report, log)
    semi = strategy in SEMI_STRATEGIES
    student = copy.deepcopy(bb) if strategy == STUDENT else None  # the pretrained weights, unwrapped
    bb, train_features = with_layers(bb, layers or ("auto" if semi else None), data, config, log, classical=semi)
    _log_backbone(bb, data, log)
    if semi:
        from transferkit.semi.run import fit_semi

        chosen = bb if isinstance(bb, MultiDepthBackbone) else MultiDepthBackbone(bb, ["last"])
        result = fit_semi(chosen, data, data.unlabeled, config, None if student is not None else out, log,
                          run_config=_run_config(data))  # fmt: skip
        if student is not None:
            result = _fit_student(data, student, result, config, head, head_options, out, resume, log)
    elif classifier is not None:
        result = fit_frozen(
            bb, data.train_eval, data.val, data.classes, data.data_config, classifier, config, out, log,
            _run_config(data), standardize=source is None, train_features=train_features,
        )  # fmt: skip
    else:
        result = _fit_trained(data, bb, strategy, config, head, head_options, strategy_options, out, resume, log)
    return _score_and_report(result, data, config, strategy, report, log)


def _log_backbone(bb: ModelBackbone, data: Data, log) -> None:
    log(
        f"Backbone {bb.name}: {bb.num_features} features, {len(bb.layer_groups())} layer groups, "
        f"{sum(p.numel() for p in bb.parameters()):,} parameters. Data: {data.summary()}."
    )


def _score_and_report(result: FitResult, data: Data, config: TrainConfig, strategy: str, report: bool, log):
    """Score the selected model on the test split (once, after selection) and write the report."""
    if data.test is not None:
        result.test_metrics = _score_test(result, data.test, config, log)
    if report and result.run_dir is not None and _is_rank_zero():
        from transferkit.report import fit_report

        html_path, _ = fit_report(result.run_dir, result.model, data, result, strategy)
        log(f"Report: {html_path} (and report.md)")
    return result


def _fit_fixmatch(data, bb, config, head, head_options, options, layers, out, resume, log) -> FitResult:
    """FixMatch: ``bb`` with a new head, every layer trained on ``data`` and ``data.unlabeled``; ``options``:
    :class:`~transferkit.semi.fixmatch.FixMatchConfig` fields."""
    from transferkit.semi.fixmatch import fit_fixmatch

    if layers is not None:
        raise ConfigError(f"FixMatch trains the backbone's own output; --layers {layers} applies to frozen "
                          "features (self-training). Leave out --layers.")  # fmt: skip
    _log_backbone(bb, data, log)
    model = build_model(bb, len(data.classes), data.classes, head, data_config=data.data_config, **(head_options or {}))
    return fit_fixmatch(model, data, data.unlabeled, config, FixMatchConfig(**options), out, resume, log,
                        run_config=_run_config(data))  # fmt: skip


def _fit_auto(data, backbone, config, weights, out, time_budget, log, report, resume, plan) -> FitResult:
    from transferkit.auto import fit_auto
    from transferkit.auto.recipes import recipes_for

    native = (create_backbone(backbone, weights=None) if isinstance(backbone, str) else backbone).data_config
    size = data.data_config.input_size
    fixed = size if size != native.input_size else None  # an explicit --image-size applies to every recipe
    recipes = recipes_for(data.unlabeled is not None, gpu=trains_on_gpu(config))
    result = fit_auto(
        data, backbone, config, weights, out, time_budget, recipes, log=log, image_size=fixed, resume=resume, plan=plan
    )
    bound = rebind(data, result.model.data_config)
    if data.test is not None:
        result.test_metrics = _score_test(result, bound.test, config, log)
    if report and result.run_dir is not None and _is_rank_zero():
        from transferkit.auto.run import report_table
        from transferkit.report import fit_report

        table = report_table(result.extra["auto"], result.extra["margins"])
        tables = [("What auto tried (selected on validation only)", *table, result.extra["selection"])]
        html_path, _ = fit_report(
            result.run_dir, result.model, bound, result, f"auto → {result.extra['winner']}", tables
        )
        log(f"Report: {html_path} (and report.md)")
    return result


def _fit_trained(
    data, bb, strategy, config, head, head_options, strategy_options, out, resume, log, facts=None
) -> FitResult:
    model = build_model(bb, len(data.classes), data.classes, head, data_config=data.data_config, **(head_options or {}))
    strat = create_strategy(strategy, **_strategy_options(strategy, strategy_options or {}))
    log(f"Strategy {strategy}: {strat.explain()}.")
    views = [data.train_eval] if config.cache_views == 1 else [data.train] * config.cache_views
    facts = {**_run_config(data), **(facts or {})}
    return fit(model, strat, data.train, data.val, config, out, resume, views, run_config=facts, log=log)


def _fit_student(data, backbone, teacher: FitResult, config, head, head_options, out, resume, log) -> FitResult:
    """A student: ``backbone`` fine-tuned on the labelled images + the ``teacher``'s pseudo-labels.

    ``resume``: the teacher is trained again (seeded: on the same install, the same pseudo-labels; its pool
    features come from the feature store with ``cache_dir``) and the student continues from ``out/last.pt``
    — refused when the pseudo-labels' digest differs from the one the run recorded (another install's
    teacher), since the student would then continue on other labels.
    """
    log(f"Student of self-training (val accuracy {teacher.metrics.accuracy:.4f})")
    result = fit_student(data, backbone, teacher.extra["pool_probs"], config, head, head_options, out, resume, log)
    log(f"Student: val accuracy {result.metrics.accuracy:.4f} (teacher {teacher.metrics.accuracy:.4f})")
    result.extra.update(teacher_val_accuracy=teacher.metrics.accuracy, teacher_spec=teacher.model.spec())
    return result


def fit_student(
    data: Data, backbone: ModelBackbone, pool_probs: torch.Tensor, config: TrainConfig, head: str = "linear",
    head_options: dict | None = None, out=None, resume: bool = False, log=print, settings=None,
) -> FitResult:  # fmt: skip
    """``backbone`` fine-tuned on ``data``'s labelled images + ``data.unlabeled`` labelled by ``pool_probs``.

    ``pool_probs``: a teacher's class probabilities of the unlabelled images, (N, C). ``settings``: a
    :class:`~transferkit.semi.student.StudentConfig` (default: the schedule of the device ``config`` trains on).
    """
    from transferkit.semi.student import StudentConfig, student_images

    settings = settings or StudentConfig.for_device(trains_on_gpu(config))
    images = student_images(data.train.base, data.unlabeled, pool_probs, settings.share)
    log(f"Student ({settings.strategy}, {settings.epochs} epochs, views: {settings.auto_augment}): "
        f"{len(data.train)} labelled + {len(images.indices)} pseudo-labelled images")  # fmt: skip
    size = data.data_config.input_size
    test = data.test.base if data.test is not None else None
    taught = make_data(images, data.val.base, data.classes, data.data_config, data.preset, test=test,
                       image_size=size, auto_augment=settings.auto_augment)  # fmt: skip
    pseudo = {"pseudo_labels": {"images": len(images.indices), "sha256": images.digest()}}
    result = _fit_trained(taught, backbone, settings.strategy, settings.train_config(config), head, head_options,
                          settings.strategy_options(), out, resume, log, pseudo)  # fmt: skip
    result.extra.update(pseudo_labelled=len(images.indices), student=dataclasses.asdict(settings))
    return result


def _run_config(data: Data) -> dict[str, Any]:
    return {
        "data": {
            "classes": data.classes,
            "train": len(data.train),
            "val": len(data.val),
            "test": len(data.test) if data.test is not None else 0,
            "preset": data.preset,
            "mean": list(data.data_config.mean),
            "std": list(data.data_config.std),
            "image_size": data.data_config.input_size,
        }
    }


def _is_rank_zero() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _score_test(result: FitResult, test: Dataset, config: TrainConfig, log) -> Metrics:
    """Test metrics of the selected model: computed once, after selection, never used to select."""
    metrics = evaluate(result.model, test, config)
    log(f"test accuracy {metrics.accuracy:.4f}, macro F1 {metrics.f1:.4f} ({len(test)} images, never used to select)")
    if result.run_dir is not None and _is_rank_zero():
        path = result.run_dir / "best_metrics.json"
        saved = json.loads(path.read_text()) if path.is_file() else {}
        saved["test"] = {**metrics.summary(), "images": len(test), "confusion": metrics.confusion}
        path.write_text(json.dumps(saved, indent=2))
    return metrics


def with_layers(
    backbone: ModelBackbone,
    layers: str | Sequence[str] | None,
    data: Data,
    config: TrainConfig,
    log=print,
    classical: bool = False,
) -> tuple[ModelBackbone, tuple[torch.Tensor, torch.Tensor] | None]:
    """``backbone`` pooling the layer groups ``layers`` names (``auto``: chosen by CV on the training split).

    ``classical``: ``auto`` also tries each candidate with the input's HOG descriptor beside it
    (:data:`~transferkit.backbones.multi_depth.HOG`). Also returns the chosen features of the training
    images when ``auto`` had to compute them.
    """
    if layers in (None, "", "last", ["last"]) or not backbone.layer_groups():
        return backbone, None
    if layers != "auto":
        return MultiDepthBackbone(backbone, resolve_layers(backbone, layers)), None
    extra = [HOG] if classical else []
    every = MultiDepthBackbone(backbone, group_names(backbone) + extra)
    fabric = make_fabric(config)
    every.to(fabric.device)
    dtype = frozen_autocast_dtype(config.precision, fabric.device)
    x, y = extract_features(
        fabric, every, data.train_eval, config.batch_size, config.num_workers, autocast_dtype=dtype,
        desc="features of every layer group" if config.progress else None,
    )  # fmt: skip
    blocks = layer_blocks(every, x)
    choice = select_layers(blocks, y.numpy(), seed=config.seed, extra=extra)
    if not choice.scores:
        why = "a class has fewer than 2 training images, nothing to cross-validate"
        log(f"--layers auto: {why}; using {choice.layers[0]}.")
    for names, accuracy in choice.scores[:5]:
        log(f"  layers {'+'.join(names)}: 3-fold CV linear-probe accuracy {accuracy:.4f}")
    if choice.scores:
        log(f"--layers auto chose {', '.join(choice.layers)} (cross-validated on the training split only).")
    chosen = MultiDepthBackbone(backbone, choice.layers)
    return chosen, (pick_layers(every, x, choice.layers), y)


def evaluate(model: TransferModel, dataset: Dataset, config: TrainConfig | None = None, tta: str | None = None):
    """Metrics of ``model`` on ``dataset`` (eval transform); ``tta`` overrides the model's test-time views."""
    config = config or TrainConfig()
    fabric = make_fabric(config)
    model.to(fabric.device).eval()
    saved = model.tta
    model.tta = saved if tta is None else tta
    try:
        logits, labels = dataset_logits(
            fabric, model, dataset, config.batch_size, config.num_workers, config.channels_last
        )
    finally:
        model.tta = saved
    return classification_metrics(labels.numpy(), logits.float().softmax(1).numpy(), config.top_k)
