"""What ``--strategy auto`` tries: a short list of recipes, cheapest first.

A recipe is a strategy with settings that work on small data without tuning: the classical
baselines a user would try first, frozen multi-depth features with a solved linear probe,
and fine-tuning recipes (label smoothing, warm-up, EMA of weights, augmented views of the
cached bottom). Trained recipes name several input sizes: the largest whose estimated time
fits the remaining budget is used. Every number here is a default that the benchmark
(``benchmarks/bench_accuracy.py``) measured on Fashion-MNIST and that is *not* tuned to it:
no recipe looks at the test split, and each one is a standard practice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transferkit.semi import FIXMATCH, SELF_TRAINING, STUDENT
from transferkit.strategies.sklearn_probe import CLASSICAL_BASELINES


@dataclass(frozen=True)
class Recipe:
    """One candidate of ``auto``.

    Args:
        name: Shown in tables and used as the candidate's run folder.
        strategy: A ``train_classifier`` strategy (``sklearn-hog-svm``, ``partial``, ``lp-ft``...).
        sizes: Input sizes to choose from, largest first (empty: the backbone's or extractor's own).
        layers: ``--layers`` for the strategy (``"auto"``: chosen by CV).
        options: Strategy options; ``groups_fraction`` becomes ``groups`` = that share of the layer groups.
        config: ``TrainConfig`` fields of the recipe (epochs, lr, batch size, EMA...).
        share: Fraction of the budget the recipe may take (picks its input size); more when the recipes
            after it still get their shares (see :func:`transferkit.auto.run.allowance`).
        min_steps: Trained recipes run at least this many optimizer steps (more epochs on small data:
            100 images at batch 32 are only 4 steps an epoch), up to ``max_epochs``.
        about: One line for users.
    """

    name: str
    strategy: str
    sizes: tuple[int, ...] = ()
    layers: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    share: float = 1.0
    min_steps: int = 0
    max_epochs: int = 60
    about: str = ""

    @property
    def classical(self) -> bool:
        return self.strategy in CLASSICAL_BASELINES

    @property
    def trained(self) -> bool:
        """Whether the recipe takes gradient steps in the backbone (frozen-feature recipes do not)."""
        return not self.strategy.startswith("sklearn-") and self.strategy not in ("feature-extraction", SELF_TRAINING)


FINE_TUNE = {"lr": 1e-3, "batch_size": 32, "warmup_epochs": 1.0, "label_smoothing": 0.1}

DEFAULT_RECIPES = (
    Recipe("pixels-svm", "sklearn-pixels-svm", about="raw pixels (32 px) → RBF SVM, C by CV: a classical baseline"),
    Recipe("hog-svm", "sklearn-hog-svm", about="HOG descriptors (64 px) → RBF SVM, C by CV: a classical baseline"),
    Recipe(
        "features",
        "sklearn-logreg",
        layers="auto",
        share=0.2,
        about="frozen features pooled from the layer groups chosen by CV → logistic regression, C by CV",
    ),
    Recipe(
        "partial",
        "partial",
        sizes=(224, 192, 160, 128, 96),
        options={"groups_fraction": 0.4},
        config={"epochs": 10, "lr": 1e-3, "batch_size": 64, "cache_views": 4, "label_smoothing": 0.1},
        min_steps=150,
        share=0.3,
        about="deepest 40% of the layer groups fine-tuned on 4 cached augmented views of the frozen bottom",
    ),
    Recipe(
        "lp-ft",
        "lp-ft",
        sizes=(224, 160, 128, 112, 96),
        options={"probe_epochs": 1, "ft_lr_scale": 0.5, "freeze_bn": True},
        config={**FINE_TUNE, "epochs": 12},
        min_steps=200,
        share=0.35,
        about="linear probe solved by L-BFGS, then every layer with BatchNorm statistics frozen (Kumar et al.)",
    ),
    Recipe(
        "fine-tune",
        "fine-tune",
        sizes=(224, 160, 128, 112, 96),
        config={**FINE_TUNE, "epochs": 15, "ema_decay": 0.998},
        min_steps=200,
        share=0.25,
        about="every layer, AdamW with warm-up and cosine decay, label smoothing, EMA of weights",
    ),
)

SEMI_RECIPE = Recipe(
    SELF_TRAINING,
    SELF_TRAINING,
    layers="auto",
    share=0.3,
    about="frozen features of the labelled and the --unlabeled images (plain and RandAugment views) → "
    "label propagation on their k-NN graph, then again on each round's MLP head's hidden layer, the round kept by "
    "validation (tried only with --unlabeled)",
)

STUDENT_RECIPE = Recipe(
    STUDENT,
    STUDENT,
    layers="auto",
    share=0.5,
    about="self-training's head labels the --unlabeled images (class-balanced) → on a CPU the deepest 3 layer groups "
    "fine-tuned on labelled + 80 % of them, 3 epochs; on a GPU every layer (LP-FT) on all of them with RandAugment "
    "views and an EMA, 7 epochs (tried only with --unlabeled)",
)

FIXMATCH_RECIPE = Recipe(
    FIXMATCH,
    FIXMATCH,
    sizes=(160, 128, 112, 96),
    share=0.6,
    about="a probe, then every layer trained on the labelled images and the --unlabeled images' weak/strong views "
    "(FixMatch; tried only with --unlabeled on a GPU)",
)

SEMI_RECIPES = (SEMI_RECIPE, STUDENT_RECIPE)  # added to auto's recipes when there are unlabelled images


def recipes_for(unlabeled: bool, gpu: bool = False) -> tuple[Recipe, ...]:
    """``auto``'s recipes, cheapest first; with unlabelled images, self-training after the other frozen-feature
    recipes and before the fine-tuning ones, the student last, and on a GPU FixMatch after it (on a CPU it
    trains ~12 images/s at 96 px: it would never fit a budget).

    Order matters for the budget: a recipe may use what the *trained* recipes after it do not need
    (:func:`~transferkit.auto.run.allowance`), so a frozen recipe placed after them gets only what they
    left — self-training, the recipe that reads the pool, was skipped that way on a faster machine.
    """
    if not unlabeled:
        return DEFAULT_RECIPES
    first_trained = next(i for i, recipe in enumerate(DEFAULT_RECIPES) if recipe.trained)
    recipes = (*DEFAULT_RECIPES[:first_trained], SEMI_RECIPE, *DEFAULT_RECIPES[first_trained:], STUDENT_RECIPE)
    return (*recipes, FIXMATCH_RECIPE) if gpu else recipes
