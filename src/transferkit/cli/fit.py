"""``transferkit fit DATA``: train a classifier with a transfer strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from transferkit.cli._common import backbone_and_data, parse_key_values, train_config
from transferkit.cli._config_file import given_on_command_line, merge_config_file


def fit(
    ctx: typer.Context,
    data: Path = typer.Argument(..., help="Folder (train/ + val/, or one folder per class) or CSV of path,label."),
    backbone: str = typer.Option("efficientnet_lite0", help="timm or torchvision name; 'tv:' forces torchvision."),
    weights: str = typer.Option("imagenet", help="imagenet (offline caches only), none, or a .pth/.safetensors file."),
    strategy: str = typer.Option(
        "auto",
        help="auto (try budgeted recipes incl. classical baselines, keep the best on validation), "
        "feature-extraction, fine-tune, partial, discriminative, progressive, lp-ft, sklearn-logreg, sklearn-svm, "
        "sklearn-hog-svm, sklearn-pixels-svm, self-training, self-training-student or fixmatch (need --unlabeled; "
        "fixmatch trains every layer on the unlabelled images' weak/strong views: a GPU's recipe), "
        "or PEFT: lora, adapter, bitfit, prompt.",
    ),
    unlabeled: Optional[Path] = typer.Option(
        None,
        help="Folder of unlabelled images (any depth): auto adds the recipes that learn from them "
        "(self-training, self-training-student, and fixmatch on a GPU).",
    ),
    time_budget: str = typer.Option("10m", help="auto: wall-clock budget for all recipes, e.g. 600, 10m, 1h."),
    plan: Optional[Path] = typer.Option(
        None,
        help="auto: an earlier auto run's folder; run each recipe at the input size it chose and skip what it "
        "skipped, instead of timing this machine (the same candidates on another seed, split or machine).",
    ),
    layers: Optional[str] = typer.Option(
        None,
        help="Pool features from several layer groups: auto (chosen by CV on train), last, or NAME,NAME; "
        "add hog for the input's HOG descriptor beside them.",
    ),
    groups: Optional[int] = typer.Option(None, help="partial: number of deepest layer groups to train."),
    ratio: Optional[float] = typer.Option(None, help="discriminative/progressive: lr ratio shallowest/deepest group."),
    epochs_per_stage: Optional[int] = typer.Option(None, help="progressive: epochs before the next group unfreezes."),
    probe_epochs: Optional[int] = typer.Option(None, help="lp-ft: epochs of linear probing."),
    ft_lr_scale: Optional[float] = typer.Option(None, help="lp-ft: lr multiplier of the fine-tuning stage."),
    freeze_bn: Optional[bool] = typer.Option(
        None, "--freeze-bn/--no-freeze-bn", help="lp-ft: keep BatchNorm statistics frozen while fine-tuning."
    ),
    peft_options: Optional[str] = typer.Option(
        None, help="lora/adapter/prompt options as key=value,... e.g. r=4,alpha=8 (lora), reduction=16, pad=8."
    ),
    fixmatch_options: Optional[str] = typer.Option(
        None,
        help="fixmatch: threshold=0.95,mu=7,weight=1,min_steps=50,augment_on=auto|device|loader (key=value,...). "
        "Its schedule (12 epochs, lr 5e-4, batch 64, EMA 0.999, 1 warm-up epoch) yields to --epochs, --lr, "
        "--batch-size, --ema-decay and --warmup-epochs when given.",
    ),
    head: str = typer.Option("linear", help="linear or mlp."),
    head_dropout: float = typer.Option(0.0, help="Dropout before the head's last Linear."),
    head_hidden: int = typer.Option(512, help="mlp head: hidden width."),
    epochs: int = typer.Option(10),
    batch_size: int = typer.Option(32),
    lr: float = typer.Option(1e-3),
    optimizer: str = typer.Option("adamw", help="adamw or sgd."),
    weight_decay: float = typer.Option(1e-4),
    scheduler: str = typer.Option("cosine", help="none, step, plateau, cosine, onecycle."),
    warmup_epochs: float = typer.Option(0.0),
    step_size: int = typer.Option(5),
    gamma: float = typer.Option(0.1),
    label_smoothing: float = typer.Option(0.0),
    grad_accum: int = typer.Option(1),
    max_grad_norm: Optional[float] = typer.Option(None),
    precision: str = typer.Option("auto", help="auto, 32-true, bf16-mixed, 16-mixed."),
    patience: Optional[int] = typer.Option(None, help="Early stopping patience in epochs."),
    monitor: str = typer.Option("val_loss", help="val_loss, val_acc or val_f1: early stopping and best checkpoint."),
    mixup: float = typer.Option(0.0, help="Mixup alpha (0: off)."),
    cutmix: float = typer.Option(0.0, help="CutMix alpha."),
    balance: str = typer.Option("none", help="Class imbalance: none, sampler, loss."),
    cache: str = typer.Option("auto", help="auto: cache the outputs of frozen layers; off: recompute every epoch."),
    cache_views: int = typer.Option(1, help="Augmented views cached per image (1: un-augmented)."),
    cache_max_gb: float = typer.Option(
        4.0, help="Largest in-memory cache of frozen outputs (past it: memory-mapped from --cache-dir, or none)."
    ),
    cache_dir: Optional[Path] = typer.Option(
        None, help="Keep cached frozen outputs on disk and reuse them across runs (keyed by a content hash)."
    ),
    train_bn: bool = typer.Option(False, help="Let frozen BatchNorm layers update their statistics."),
    head_solver: str = typer.Option(
        "lbfgs", help="Head-only stages on cached features: lbfgs (solved to convergence) or sgd (epochs)."
    ),
    ema_decay: float = typer.Option(0.0, help="EMA of weights (e.g. 0.998), validated and saved; 0: off."),
    loggers: str = typer.Option("", help="Comma-separated experiment trackers: tensorboard, csv, mlflow."),
    preset: str = typer.Option("light", help="Augmentation: none, light, strong, microscopy."),
    auto_augment: str = typer.Option("none", help="none, randaugment, trivialaugment."),
    normalize: Optional[str] = typer.Option(None, help="backbone or dataset mean/std (microscopy default: dataset)."),
    image_size: Optional[int] = typer.Option(None, help="Input size (default: the backbone's)."),
    val_fraction: float = typer.Option(0.2, help="Held-out fraction when there is no val/ folder."),
    on_bad_image: str = typer.Option("skip", help="skip (warn and count) or error (stop, naming the file)."),
    max_pixels: Optional[int] = typer.Option(None, help="Decompression-bomb guard (pixels per image)."),
    seed: int = typer.Option(0),
    num_workers: int = typer.Option(0, "--workers"),
    accelerator: str = typer.Option("auto"),
    devices: int = typer.Option(1),
    num_nodes: int = typer.Option(1),
    out: Path = typer.Option(Path("runs/fit"), help="Run folder."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last finished epoch."),
    progress: bool = typer.Option(True, help="Progress bars."),
    config: Optional[Path] = typer.Option(None, help="YAML file of options; command-line flags override it."),
) -> None:
    """Train a classifier on a folder of images from a pretrained backbone."""
    from transferkit.api import load_unlabeled, strategy_option_names, train_classifier

    p = merge_config_file(ctx, dict(ctx.params), config)
    p["peft_options"] = parse_key_values(p.get("peft_options"))
    if isinstance(p.get("loggers"), str):
        p["loggers"] = tuple(x.strip() for x in p["loggers"].split(",") if x.strip())
    bb, dataset = backbone_and_data(p)
    if p.get("unlabeled"):
        dataset.unlabeled = load_unlabeled(
            p["unlabeled"], p.get("on_bad_image", "skip"), p.get("max_pixels") or 89_478_485
        )
        typer.echo(f"Unlabelled images: {len(dataset.unlabeled)} in {p['unlabeled']}")
    head_options = (
        {"dropout": p["head_dropout"]}
        if p["head"] == "linear"
        else {"hidden": p["head_hidden"], "dropout": p["head_dropout"]}
    )
    result = train_classifier(
        dataset,
        bb,
        p["strategy"],
        train_config(p),
        head=p["head"],
        head_options=head_options,
        strategy_options=_strategy_options(ctx, p, strategy_option_names),
        out=p["out"],
        resume=p["resume"],
        layers=p.get("layers"),
        time_budget=p.get("time_budget", "10m"),
        plan=p.get("plan"),
    )
    m = result.metrics
    what = (
        f"auto selected {result.extra['winner']}" if "winner" in result.extra else f"best epoch {result.best_epoch + 1}"
    )
    typer.echo(
        f"{what}: val accuracy {m.accuracy:.4f}, macro F1 {m.f1:.4f}, precision {m.precision:.4f}, "
        f"recall {m.recall:.4f}; {result.train_seconds:.1f} s"
    )
    if result.test_metrics is not None:
        t = result.test_metrics
        typer.echo(f"test accuracy {t.accuracy:.4f}, macro F1 {t.f1:.4f} (test split, scored once after selection)")
    if result.run_dir is not None:
        typer.echo(f"run folder: {result.run_dir} (best.pt, best_metrics.json, report.html, …)")


FIXMATCH_SCHEDULE = ("epochs", "lr", "batch_size", "ema_decay", "warmup_epochs")  # FixMatch's own unless given


def _strategy_options(ctx: typer.Context, p: dict, names) -> dict:
    """The options ``p["strategy"]`` takes; fixmatch's from ``--fixmatch-options`` plus the schedule flags given
    on the command line or in the config file (their defaults are other strategies')."""
    if p["strategy"] != "fixmatch":
        return {k: p[k] for k in [*names(p["strategy"]), "peft_options"] if k in p}
    options = parse_key_values(p.get("fixmatch_options"))
    for name in FIXMATCH_SCHEDULE:
        if given_on_command_line(ctx, name) or p[name] != ctx.params[name]:  # or set by the config file
            options[name] = p[name]
    return options
