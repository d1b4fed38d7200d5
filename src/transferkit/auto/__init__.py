"""``--strategy auto``: budgeted recipes, selected on validation, the winner saved like any run."""

from transferkit.auto.recipes import DEFAULT_RECIPES, Recipe
from transferkit.auto.run import Trial, fit_auto, parse_budget

__all__ = ["DEFAULT_RECIPES", "Recipe", "Trial", "fit_auto", "parse_budget"]
