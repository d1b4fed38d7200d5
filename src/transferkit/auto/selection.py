"""How sure ``auto``'s choice is: each candidate against the selected one, on the same validation images.

Two candidates are scored on the same images, so their accuracy difference is a paired one. Only the
images where they disagree about being right carry information: ``wins`` (the selected one right, the
other wrong) and ``losses`` (the reverse). The margin is ``(wins - losses) / n`` — exactly the difference
of the two accuracies — shown with its standard error ``std(d) / sqrt(n)`` of the per-image differences
``d_i ∈ {-1, 0, 1}``. Whether it is more than validation noise is McNemar's exact test (McNemar, 1947):
under "equally good", each disagreement goes either way with probability 1/2, so the two-sided p-value
is a binomial tail of ``wins`` in ``wins + losses`` (scipy's ``binomtest``; exact, unlike a normal
interval, which calls 4 wins to 0 significant where the exact p is 0.125). Clearly ahead: ``p < 0.05``.
``auto`` says which in its log, ``auto.json`` and the report, naming the runner-up and the best classical
baseline — so a run is never worse than the baseline it computed without saying that it may be.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

ALPHA = 0.05


@dataclass(frozen=True)
class Margin:
    """The selected candidate against another on the same validation images.

    ``points``: its accuracy minus the other's, × 100; ``se``: the paired standard error of that, × 100;
    ``wins`` / ``losses``: images only the selected one / only the other one gets right.
    """

    points: float
    se: float
    images: int
    wins: int = 0
    losses: int = 0

    @property
    def p_value(self) -> float:
        """McNemar's exact two-sided p-value (1 when they never disagree)."""
        from scipy.stats import binomtest

        return 1.0 if self.wins + self.losses == 0 else float(binomtest(self.wins, self.wins + self.losses).pvalue)

    @property
    def clear(self) -> bool:
        """Whether the selected one is better beyond validation noise (``p < 0.05`` and ahead)."""
        return self.wins > self.losses and self.p_value < ALPHA

    def short(self) -> str:
        """``-3.0 ± 1.9``: the other one's accuracy minus the selected one's, ± the SE (table cells)."""
        return f"{0.0 - self.points:+.1f} ± {self.se:.1f}"


def paired_margin(selected: Tensor, other: Tensor) -> Margin:
    """Margin of ``selected`` over ``other``, both boolean (N,) vectors: right or wrong on each validation image."""
    if selected.shape != other.shape or selected.ndim != 1:
        raise ValueError(f"both need one flag per validation image; got shapes {tuple(selected.shape)}, "
                         f"{tuple(other.shape)}")  # fmt: skip
    d = selected.double() - other.double()
    se = float(d.std()) / math.sqrt(len(d)) if len(d) > 1 else math.inf
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    return Margin(100 * float(d.mean()), 100 * se, len(d), wins, losses)


def verdict(margin: Margin, split: str = "validation") -> str:
    """Whether a margin on ``split`` images is more than noise: clearly ahead / behind (p < 0.05), or not."""
    test = f"McNemar's exact p = {margin.p_value:.3g}"
    if margin.p_value < ALPHA:
        return f"clearly {'ahead' if margin.wins > margin.losses else 'behind'} ({test})"
    return (
        f"within {split} noise ({test}): either may do better on new images; more {split} images would tell them apart"
    )


def _counts(other: str, margin: Margin, split: str) -> str:
    return (
        f"by {margin.points:+.1f} points on {margin.images} {split} images (right on {margin.wins} where {other} is "
        f"wrong, wrong on {margin.losses} where it is right)"
    )


def sentence(selected: str, other: str, margin: Margin, role: str) -> str:
    """One line for users: by how much ``selected`` beat ``other`` on validation, and whether it is noise."""
    if margin.wins + margin.losses == 0:
        return (
            f"{selected} and {other} ({role}) are right on the same {margin.images} validation images: "
            "validation cannot tell them apart."
        )
    return f"{selected} kept over {other} ({role}) {_counts(other, margin, 'validation')}: {verdict(margin)}."


def versus(first: str, other: str, margin: Margin, split: str, roles: tuple[str, str] = ("", "")) -> str:
    """One line: ``first`` against ``other`` on the same ``split`` images (``margin``: first's over other's);
    ``roles`` are said once, after each name."""
    a, b = (f"{name} ({role})" if role else name for name, role in zip((first, other), roles))
    if margin.wins + margin.losses == 0:
        return f"{a} and {b} are right on the same {margin.images} {split} images."
    ahead = "ahead of" if margin.points > 0 else "level with" if margin.points == 0 else "behind"
    return f"{a} is {ahead} {b} {_counts(other, margin, split)}: {verdict(margin, split)}."


def explain(selected: str, ranked: Sequence[str], classical: set[str], margins: dict[str, Margin]) -> list[str]:
    """Lines comparing ``selected`` with the runner-up of ``ranked`` (best first) and with the best of the other
    kind: the best classical baseline when a transfer recipe is selected, the best transfer recipe when a
    classical baseline is (``classical``: the names of the classical candidates)."""
    others = [name for name in ranked if name != selected and name in margins]
    if not others:
        return []
    role = "the runner-up, a classical baseline" if others[0] in classical else "the runner-up"
    lines = [sentence(selected, others[0], margins[others[0]], role)]
    if selected in classical:
        lines.insert(0, f"{selected} is a classical baseline: no transfer recipe did better on validation.")
        other_kind, role = next((n for n in others if n not in classical), None), "the best transfer recipe"
    else:
        other_kind, role = next((n for n in others if n in classical), None), "the best classical baseline"
    if other_kind is not None and other_kind != others[0]:
        lines.append(sentence(selected, other_kind, margins[other_kind], role))
    return lines
