"""``--strategy auto``: try the recipes within a time budget, select on validation, save the winner.

1. Measure this machine's speed for the backbone (:class:`~transferkit.auto.budget.CostProbe`).
2. Run each recipe that fits the remaining budget (trained ones at the largest input size
   that fits), each on the same training split, scored on the validation split only.
3. Add the probability-averaged ensemble of the two best.
4. Pick the best validation accuracy (ties: lower validation loss); save it as ``best.pt``
   like any run, with ``auto.json`` listing what was tried, how it scored and how long it took.

The test split is never seen here: candidates get the data without it, and
:func:`~transferkit.api.train_classifier` scores the winner on it once, afterwards.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferkit.auto.budget import (
    EPOCH_OVERHEAD,
    HOG_SECONDS_PER_IMAGE,
    RECIPE_OVERHEAD,
    CostProbe,
    svm_seconds,
)
from transferkit.auto.ledger import Ledger, load_plan
from transferkit.auto.recipes import DEFAULT_RECIPES, Recipe
from transferkit.auto.selection import Margin, explain, paired_margin
from transferkit.backbones import ModelBackbone, create_backbone
from transferkit.engine.checkpoint import atomic_save
from transferkit.engine.config import TrainConfig, trains_on_gpu
from transferkit.engine.distributed import dataset_logits, make_fabric
from transferkit.engine.ensemble import EnsembleModel
from transferkit.engine.loop import FitResult
from transferkit.engine.metrics import Metrics, classification_metrics
from transferkit.errors import ConfigError, DataError
from transferkit.semi import FIXMATCH, SELF_TRAINING, SEMI_STRATEGIES, STUDENT
from transferkit.semi.label_propagation import graph_seconds
from transferkit.semi.self_training import SelfTrainingConfig

INHERITED = ("seed", "precision", "num_workers", "accelerator", "devices", "num_nodes", "top_k", "channels_last")
INHERITED += ("cache_max_gb", "cache_dir", "progress")


@dataclass
class Trial:
    """One recipe's outcome (``status``: ``ok`` or ``skipped``, with the reason in ``note``)."""

    name: str
    status: str
    size: int | None = None
    estimate: float = 0.0
    seconds: float = 0.0
    val_accuracy: float = math.nan
    val_loss: float = math.nan
    note: str = ""
    model: nn.Module | None = None
    val_probs: torch.Tensor | None = None
    result: FitResult | None = None
    val_correct: torch.Tensor | None = None  # (N,) bool: right on each validation image

    def row(self, margin: Margin | None = None) -> dict[str, Any]:
        """The trial's line of ``auto.json``; ``margin``: the selected candidate's over this one."""
        return {
            "recipe": self.name,
            "status": self.status,
            "input_size": self.size,
            "val_accuracy": None if math.isnan(self.val_accuracy) else round(self.val_accuracy, 4),
            "val_loss": None if math.isnan(self.val_loss) else round(self.val_loss, 4),
            "seconds": round(self.seconds, 1),
            "estimated_seconds": round(self.estimate, 1),
            "note": self.note,
            "val_margin_points": None if margin is None else round(margin.points, 2),
            "val_margin_se": None if margin is None else round(margin.se, 2),
            "val_wins_losses": None if margin is None else [margin.wins, margin.losses],  # the winner's, this one's
            "val_mcnemar_p": None if margin is None else round(margin.p_value, 4),
        }


def parse_budget(text: str | float | int) -> float:
    """Seconds from ``600``, ``"600"``, ``"10m"``, ``"1.5h"``."""
    if isinstance(text, (int, float)):
        return float(text)
    value = text.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(value[-1:], None)
    try:
        seconds = float(value[:-1]) * scale if scale else float(value)
    except ValueError:
        raise ConfigError(
            f"--time-budget must be seconds or a number with s/m/h, e.g. 600 or 10m; got {text!r}."
        ) from None
    if seconds <= 0:
        raise ConfigError(f"--time-budget must be positive, got {text!r}.")
    return seconds


def recipe_config(recipe: Recipe, base: TrainConfig, train_images: int) -> TrainConfig:
    """The recipe's settings, with the user's seed, precision, devices and workers.

    Epochs grow on small data until the recipe runs ``min_steps`` optimizer steps (at most ``max_epochs``).
    """
    inherited = {k: getattr(base, k) for k in INHERITED}
    config = TrainConfig(**{**recipe.config, **inherited})
    steps_per_epoch = max(1, math.ceil(train_images / (config.batch_size * config.grad_accum)))
    epochs = min(
        max(config.epochs, math.ceil(recipe.min_steps / steps_per_epoch)), max(recipe.max_epochs, config.epochs)
    )
    return dataclasses.replace(config, epochs=epochs)


def estimate(recipe: Recipe, size: int | None, probe: CostProbe, data, cfg: TrainConfig) -> float:
    """Estimated seconds of ``recipe`` at input ``size`` on this machine (see :mod:`transferkit.auto.budget`)."""
    from transferkit.api import rebind

    n_train, n_val = len(data.train), len(data.val)
    images = n_train + n_val
    if recipe.classical:
        return RECIPE_OVERHEAD + images * HOG_SECONDS_PER_IMAGE + svm_seconds(n_train)
    size = size or data.data_config.input_size  # recipes without sizes run at the data's size
    forward = probe.forward(size)
    if recipe.strategy == FIXMATCH:
        return _fixmatch(size, probe, data, forward, recipe.options)
    if recipe.strategy == STUDENT:  # its teacher (self-training), then the student's epochs
        teacher = estimate(dataclasses.replace(recipe, strategy=SELF_TRAINING), size, probe, data, cfg)
        return teacher + _student(size, probe, data, forward, trains_on_gpu(cfg))
    if not recipe.trained:  # frozen features: every group once for --layers auto, then the cached views
        passes = n_train * (cfg.cache_views + (1 if recipe.layers == "auto" else 0)) + n_val
        if recipe.strategy == SELF_TRAINING:  # a plain and a strong view of every image, the graphs, the head's rounds
            pool = n_train + len(data.unlabeled)
            passes += 2 * pool  # each with HOG too, should the layer choice keep it
            per_pass = forward + probe.load(data.train, size) + HOG_SECONDS_PER_IMAGE
            graphs = SelfTrainingConfig().graph_builds() * graph_seconds(pool)
            return RECIPE_OVERHEAD + passes * per_pass + graphs + 60.0
        load = probe.load(data.train, data.data_config.input_size) if cfg.cache_views > 1 else 0.0
        return RECIPE_OVERHEAD + passes * (forward + load) + 5.0 + n_train * 0.02  # + layer selection and C search
    load = probe.load(rebind(data, data.data_config, size).train, size)
    epochs = cfg.epochs
    fixed = RECIPE_OVERHEAD + epochs * EPOCH_OVERHEAD
    if recipe.strategy == "partial":
        train_step = probe.train(size, _groups(recipe, probe.backbone))
        return fixed + _partial(cfg.cache_views * n_train, n_train, n_val, epochs, forward, load, train_step)
    per_epoch = n_train * (probe.train(size) + load) + n_val * (forward + load)
    return fixed + images * forward + epochs * per_epoch


def _partial(cached: int, trained: int, n_val: int, epochs: int, forward: float, load: float, step: float) -> float:
    """Seconds of a partial fine-tune: the frozen bottom (about half a forward) of ``cached`` training views and
    the validation images once, then ``epochs`` of training steps on ``trained`` images and validation tops."""
    return (cached + n_val) * (0.5 * forward + load) + epochs * (trained * step + n_val * forward * 0.5)


def _student(size: int, probe: CostProbe, data, forward: float, gpu: bool) -> float:
    """Seconds of a self-training student on the labelled and pseudo-labelled images: on a CPU a partial
    fine-tune of its deepest groups, one view of each (their frozen bottom computed once); on a GPU a probe
    (one pass) and every layer trained for the rest of its epochs."""
    from transferkit.api import rebind
    from transferkit.semi.student import StudentConfig

    settings = StudentConfig.for_device(gpu)
    images = len(data.train) + int(settings.share * len(data.unlabeled))
    load = probe.load(rebind(data, data.data_config, size).train, size)
    fixed = RECIPE_OVERHEAD + settings.epochs * EPOCH_OVERHEAD
    if settings.strategy == "lp-ft":  # the probe's epochs solved in one pass, then every layer
        trained = (settings.epochs - settings.strategy_options()["probe_epochs"]) * images * (probe.train(size) + load)
        return fixed + (images + settings.epochs * len(data.val)) * (forward + load) + trained
    step = probe.train(size, settings.groups)
    return fixed + _partial(images, images, len(data.val), settings.epochs, forward, load, step)


def _fixmatch(size: int, probe: CostProbe, data, forward: float, options: dict) -> float:
    """Seconds of FixMatch (``options``: its settings): the probe (the labelled and validation images' features
    once), then its epochs of steps, each B labelled + μB unlabelled images loaded and (1 + 2μ)·B training
    images (weak and strong views)."""
    from transferkit.api import rebind
    from transferkit.semi.fixmatch import FixMatchConfig

    settings = FixMatchConfig(**options)
    n_train, n_val, pool = len(data.train), len(data.val), len(data.unlabeled)
    b, u = settings.batch_size, settings.mu * settings.batch_size
    steps = max(math.ceil(n_train / b), math.ceil(pool / u), settings.min_steps)
    load = probe.load(rebind(data, data.data_config, size).train, size)
    step = (b + 2 * u) * probe.train(size) + (b + u) * load
    probe_stage = (n_train + n_val) * forward + 5.0  # + the L-BFGS solve
    trained = (settings.epochs - 1) * (steps * step + n_val * forward)  # the first epoch is the probe
    return RECIPE_OVERHEAD + settings.epochs * EPOCH_OVERHEAD + probe_stage + trained


def _groups(recipe: Recipe, backbone) -> int:
    fraction = recipe.options.get("groups_fraction")
    if fraction is None:
        return int(recipe.options.get("groups", 2))
    return max(1, round(fraction * len(backbone.layer_groups())))


def plan(recipe: Recipe, probe: CostProbe, data, cfg: TrainConfig, remaining: float):
    """(input size or None, estimated seconds), or (None, inf) when nothing fits ``remaining``."""
    for size in recipe.sizes or (None,):
        seconds = estimate(recipe, size, probe, data, cfg)
        if seconds <= remaining:
            return size, seconds
    return None, math.inf


def _fresh(backbone: str | ModelBackbone, weights) -> ModelBackbone:
    """A new copy of the pretrained backbone for each recipe (no recipe trains another's weights)."""
    return create_backbone(backbone, weights=weights) if isinstance(backbone, str) else copy.deepcopy(backbone)


def fit_auto(
    data,
    backbone: str | ModelBackbone = "efficientnet_lite0",
    config: TrainConfig | None = None,
    weights: str | Path | None = "imagenet",
    out: str | Path | None = None,
    time_budget: str | float = 600.0,
    recipes: Sequence[Recipe] = DEFAULT_RECIPES,
    log: Callable[[str], None] = print,
    image_size: int | None = None,
    resume: bool = False,
    plan: str | Path | None = None,
) -> FitResult:
    """Try ``recipes`` on ``data`` within ``time_budget`` seconds; return (and save) the best on validation.

    ``image_size`` fixes the input size of every network recipe (default: each recipe picks the
    largest of its sizes that fits the budget). ``resume`` continues a killed run in ``out``
    (see :mod:`transferkit.auto.ledger`). ``plan``, an earlier run's folder, replaces the timing:
    each recipe runs at the size that run chose or is skipped as it was (the budget then applies only
    to recipes the plan lacks). ``data.test`` is never read.
    ``FitResult.extra["auto"]`` holds every trial's row, ``extra["trials"]`` the trials with their models.
    """
    from transferkit.api import Data

    budget = parse_budget(time_budget)
    if plan is not None and image_size:
        raise ConfigError(f"--plan {plan} fixes each recipe's input size; leave out --image-size {image_size}.")
    decided = load_plan(plan) if plan is not None else None
    config = config or TrainConfig()
    out_path = Path(out) if out is not None else None
    ledger = Ledger(out_path, resume)
    started = time.perf_counter() - ledger.spent()
    data = dataclasses.replace(data, test=None)  # candidates and selection never see the test split
    assert isinstance(data, Data)
    fabric = make_fabric(config)
    probe = CostProbe(_fresh(backbone, weights).to(fabric.device), config)
    trials: list[Trial] = []
    if decided is not None:
        _say_unplanned(decided, recipes, plan, log)
    for index, recipe in enumerate(recipes):
        if image_size and recipe.sizes:
            recipe = dataclasses.replace(recipe, sizes=(image_size,))
        allowed = allowance(recipes, index, budget, budget - (time.perf_counter() - started))
        folder = out_path / "candidates" / recipe.name if out_path is not None else None
        job = (recipe, probe, data, backbone, weights, config, folder, log)
        trials.append(_trial(ledger, decided, allowed, job))
    done = [t for t in trials if t.status == "ok"]
    if not done:
        cheapest = min(t.estimate for t in trials)
        raise ConfigError(
            f"--time-budget {budget:.0f} s is too small for any recipe on {len(data.train)} training images here; "
            f"the cheapest needs about {cheapest:.0f} s. Raise --time-budget to at least {math.ceil(cheapest) + 5}."
        )
    classical = {r.name for r in recipes if r.classical}
    if len(done) >= 2:
        pair = sorted(done, key=_rank)[:2]
        trials.append(ensemble_trial(pair, data, config))
        classical |= {trials[-1].name} if {t.name for t in pair} <= classical else set()  # two SVMs: no transfer
    winner = min((t for t in trials if t.status == "ok"), key=_rank)
    margins, lines = selection(winner, trials, classical)
    log(format_trials(trials, winner, margins))
    for line in lines:
        log(f"[auto] {line}")
    return _finish(winner, trials, data, out_path, time.perf_counter() - started, log, (margins, lines))


def _trial(ledger: Ledger, decided: dict | None, allowed: float, job: tuple) -> Trial:
    """A resumed run's recorded decision, else the plan's (``--plan``), else this machine's timing."""
    name = job[0].name
    if entry := ledger.get(name):
        return _replay(entry, *job)
    if decided is not None and name in decided:
        return _planned(ledger, decided[name], *job)
    return _try(ledger, allowed, *job)


def _try(ledger, allowed, recipe, probe, data, backbone, weights, config, folder, log) -> Trial:
    """Run ``recipe`` at the largest size whose estimate fits ``allowed`` seconds, or skip it and say why."""
    cfg = recipe_config(recipe, config, len(data.train))
    size, seconds = plan(recipe, probe, data, cfg, allowed)
    if math.isinf(seconds):
        cheapest = estimate(recipe, recipe.sizes[-1] if recipe.sizes else None, probe, data, cfg)
        note = f"estimated {cheapest:.0f} s > {max(allowed, 0):.0f} s it may use of the budget"
        log(f"[auto] {recipe.name}: skipped ({note})")
        ledger.record(recipe.name, status="skipped", estimate=cheapest, note=note)
        return Trial(recipe.name, "skipped", estimate=cheapest, note=note)
    return _run(ledger, recipe, size, seconds, data, backbone, weights, cfg, folder, log, f"about {seconds:.0f} s")


def _run(ledger, recipe, size, seconds, data, backbone, weights, cfg, folder, log, why: str) -> Trial:
    """Say what runs and why at this size (``why``), record the decision, run it, record the result."""
    log(f"[auto] {recipe.name} ({recipe.about}){f' at {size} px' if size else ''}: {why}")
    ledger.record(recipe.name, status="running", size=size, estimate=seconds)
    trial = run_recipe(recipe, size, seconds, data, backbone, weights, cfg, folder, log)
    ledger.record(recipe.name, status=trial.status, seconds=trial.seconds, note=trial.note)
    return trial


def _planned(ledger, decided, recipe, probe, data, backbone, weights, config, folder, log) -> Trial:
    """A recipe as an earlier run (``--plan``) decided it: skipped, or run at that run's input size."""
    estimate_s = float(decided.get("estimate", 0.0))
    if decided["status"] == "skipped":
        note = f"skipped, as in the plan ({decided.get('note', '')})"
        log(f"[auto] {recipe.name}: {note}")
        ledger.record(recipe.name, status="skipped", estimate=estimate_s, note=note)
        return Trial(recipe.name, "skipped", estimate=estimate_s, note=note)
    size = decided.get("size") if recipe.sizes else None
    cfg = recipe_config(recipe, config, len(data.train))
    return _run(ledger, recipe, size, estimate_s, data, backbone, weights, cfg, folder, log, "as in the plan")


def _say_unplanned(decided: dict, recipes: Sequence[Recipe], plan, log) -> None:
    """Name the recipes the plan decided that this run does not try (and those it tried without a plan)."""
    names = {r.name for r in recipes}
    dropped = [name for name in decided if name not in names]
    added = [name for name in names if name not in decided]
    if dropped:
        log(f"[auto] in the plan ({plan}) but not tried here: {', '.join(dropped)} (e.g. no --unlabeled)")
    if added:
        log(f"[auto] not in the plan ({plan}), so planned by this machine's timing: {', '.join(sorted(added))}")


def _replay(entry, recipe, probe, data, backbone, weights, config, folder, log) -> Trial:
    """A resumed run: the recorded decision, the finished candidate reloaded, or the interrupted one resumed."""
    from transferkit.api import rebind
    from transferkit.engine.model import load_model

    size, estimate_s = entry.get("size"), float(entry.get("estimate", 0.0))
    if entry["status"] == "skipped":
        return Trial(recipe.name, "skipped", estimate=estimate_s, note=entry.get("note", ""))
    if entry["status"] == "ok" and folder is not None and (folder / "best.pt").is_file():
        model = load_model(folder / "best.pt", backbone if isinstance(backbone, ModelBackbone) else None)
        probs, metrics, loss, correct = validation_scores(model, rebind(data, model.data_config), config)
        log(f"[auto] {recipe.name}: finished before the interruption, reloaded (val accuracy {metrics.accuracy:.4f})")
        return Trial(recipe.name, "ok", model.data_config.input_size, estimate_s, float(entry["seconds"]),
                     metrics.accuracy, loss, "", model, probs, val_correct=correct)  # fmt: skip
    cfg = recipe_config(recipe, config, len(data.train))
    log(f"[auto] {recipe.name}: interrupted before, resuming at {size or 'its'} px")
    resume = folder is not None and (folder / "last.pt").is_file()
    return run_recipe(recipe, size, estimate_s, data, backbone, weights, cfg, folder, log, resume=resume)


def allowance(recipes: Sequence[Recipe], index: int, budget: float, remaining: float) -> float:
    """Seconds recipe ``index`` may take: its share of the budget, or more when the recipes after it can
    still have theirs (so time a cheap recipe left unused goes to the next ones, the last taking the rest)."""
    later = sum(min(r.share, 1.0) for r in recipes[index + 1 :] if r.trained) * budget
    return min(remaining, max(recipes[index].share * budget, remaining - later))


def _rank(trial: Trial) -> tuple[float, float]:
    return (-trial.val_accuracy, trial.val_loss)


def selection(winner: Trial, trials: Sequence[Trial], classical: set[str]) -> tuple[dict[str, Margin], list[str]]:
    """The winner's paired validation margin over every other finished trial, and the lines that explain it
    (see :mod:`transferkit.auto.selection`)."""
    done = sorted((t for t in trials if t.status == "ok"), key=_rank)
    margins = {t.name: paired_margin(winner.val_correct, t.val_correct) for t in done if t is not winner}
    return margins, explain(winner.name, [t.name for t in done], classical, margins)


def run_recipe(recipe, size, estimate_s, data, backbone, weights, cfg, folder, log, resume: bool = False) -> Trial:
    """Train one recipe on ``data`` (no test split) and score it on the validation split."""
    from transferkit.api import rebind, train_classifier

    bb = _fresh(backbone, weights)
    bound = rebind(data, data.data_config, size) if size else data  # keeps the data's normalisation
    if recipe.strategy not in SEMI_STRATEGIES and bound.unlabeled is not None:  # only they read the pool
        bound = dataclasses.replace(bound, unlabeled=None)
    options = dict(recipe.options)
    if "groups_fraction" in options:
        options = {"groups": _groups(recipe, bb)}
    started = time.perf_counter()
    try:
        result = train_classifier(
            bound, bb, recipe.strategy, cfg, weights, strategy_options=options, out=folder, resume=resume,
            log=lambda line: log(f"    {line}"), report=False, layers=recipe.layers,
        )  # fmt: skip
    except DataError as exc:  # e.g. a class too small to calibrate an SVM
        log(f"[auto] {recipe.name}: skipped ({exc})")
        return Trial(recipe.name, "skipped", size, estimate_s, note=str(exc))
    seconds = time.perf_counter() - started
    model = result.model.eval()
    probs, metrics, loss, correct = validation_scores(model, rebind(data, model.data_config), cfg)
    log(f"[auto] {recipe.name}: val accuracy {metrics.accuracy:.4f} in {seconds:.0f} s")
    size, accuracy = model.data_config.input_size, metrics.accuracy
    return Trial(recipe.name, "ok", size, estimate_s, seconds, accuracy, loss, "", model, probs, result, correct)


def validation_scores(model: nn.Module, data, config: TrainConfig) -> tuple[torch.Tensor, Metrics, float, torch.Tensor]:
    """(probabilities, metrics, cross-entropy, right on each image) of ``model`` on ``data.val``."""
    return scores_on(model, data.val, config)


def scores_on(model: nn.Module, dataset, config: TrainConfig) -> tuple[torch.Tensor, Metrics, float, torch.Tensor]:
    """(probabilities, metrics, cross-entropy, right on each image) of ``model`` on ``dataset``."""
    fabric = make_fabric(config)
    model.to(fabric.device).eval()
    logits, labels = dataset_logits(fabric, model, dataset, config.batch_size, config.num_workers)
    probs = logits.float().softmax(1)
    loss = float(nn.functional.nll_loss(probs.clamp_min(1e-12).log(), labels))
    metrics = classification_metrics(labels.numpy(), probs.numpy(), config.top_k)
    return probs, metrics, loss, probs.argmax(1) == labels


def ensemble_trial(best_two: list[Trial], data, config: TrainConfig) -> Trial:
    """The probability average of the two best candidates, scored through its own preprocessing."""
    from transferkit.api import rebind

    started = time.perf_counter()
    model = EnsembleModel([t.model for t in best_two]).eval()
    probs, metrics, loss, correct = validation_scores(model, rebind(data, model.data_config), config)
    name = "ensemble(" + " + ".join(t.name for t in best_two) + ")"
    seconds = time.perf_counter() - started + sum(t.seconds for t in best_two)
    note = "mean of the two best candidates' class probabilities"
    size = model.data_config.input_size
    return Trial(name, "ok", size, 0.0, seconds, metrics.accuracy, loss, note, model, probs, val_correct=correct)


def format_trials(trials: Sequence[Trial], winner: Trial, margins: dict[str, Margin] | None = None) -> str:
    """The table of trials; ``margins``' column: each one's validation accuracy minus the winner's, ± paired SE."""
    margins = margins or {}
    head = f"{'recipe':42s} {'input':>5s} {'val acc':>8s} {'vs selected':>12s} {'val loss':>8s} {'seconds':>8s}  note"
    lines = ["", head, "-" * len(head)]
    for t in trials:
        acc = "" if math.isnan(t.val_accuracy) else f"{t.val_accuracy:.4f}"
        loss = "" if math.isnan(t.val_loss) else f"{t.val_loss:.4f}"
        mark = " <- selected" if t is winner else ""
        vs = margins[t.name].short() if t.name in margins else ""
        lines.append(f"{t.name:42s} {t.size or '':>5} {acc:>8s} {vs:>12s} {loss:>8s} {t.seconds:8.0f}  {t.note}{mark}")
    return "\n".join(lines)


def report_table(rows: list[dict[str, Any]], margins: dict[str, Margin]) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of the report's table of the trials (``rows``: ``auto.json``'s), with :func:`format_trials`'
    margin column."""
    header = ["recipe", "status", "input_size", "val_accuracy", "vs selected (points ± SE)", "val_loss", "seconds"]
    keys = ["recipe", "status", "input_size", "val_accuracy", None, "val_loss", "seconds"]
    margin = lambda row: margins[row["recipe"]].short() if row["recipe"] in margins else ""  # noqa: E731

    def cell(row: dict[str, Any], key: str) -> Any:  # a skipped recipe has no size, score or time: blank cells
        value = row[key]
        if value is None or (row["status"] != "ok" and key in ("seconds", "val_loss", "val_accuracy")):
            return ""
        return f"{value:.1f}" if key == "seconds" else value

    return header + ["note"], [[cell(row, k) if k else margin(row) for k in keys] + [row["note"]] for row in rows]


def _finish(winner: Trial, trials: list[Trial], data, out: Path | None, seconds: float, log, chosen) -> FitResult:
    """Save the winner like any run (``best.pt``, ``best_metrics.json``) with ``auto.json``: every trial and,
    from ``chosen`` = (margins, lines) of :func:`selection`, how far ahead of the others the winner is."""
    from transferkit.api import rebind

    model, (margins, lines) = winner.model, chosen
    _, metrics, _, _ = validation_scores(model, rebind(data, model.data_config), TrainConfig(progress=False))
    rows = [t.row(margins.get(t.name)) for t in trials]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_save({"spec": model.spec(), "state_dict": model.state_dict(), "epoch": 0}, out / "best.pt")
        summary = {"winner": winner.name, "selection": lines, "trials": rows}
        (out / "auto.json").write_text(json.dumps(summary, indent=2))
        (out / "best_metrics.json").write_text(json.dumps({"recipe": winner.name, **vars(metrics)}, indent=2))
        log(f"[auto] selected {winner.name}; saved {out / 'best.pt'} and {out / 'auto.json'}")
    history = [{"epoch": 0, "stage": 0, "val_acc": metrics.accuracy, "val_loss": winner.val_loss}]
    images = len(data.train)
    return FitResult(
        model,
        history,
        0,
        metrics,
        out,
        seconds,
        images / max(seconds, 1e-9),
        extra={"auto": rows, "winner": winner.name, "trials": trials, "selection": lines, "margins": margins},
    )
