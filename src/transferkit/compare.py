"""Several strategies on one split and one budget: the classic transfer-learning comparison.

The classical baselines (raw pixels and HOG descriptors, each → RBF SVM) always run first, so the
margin over what a user would try without transfer learning is in every table. When the data
has a test split, each row also has its test accuracy (reported, never used to choose).

Every strategy is scored on the same validation (and test) images, so each transfer row also has its
paired margin over the best classical baseline (chosen on validation): the accuracy difference, its
standard error, the images only one of the two gets right and McNemar's exact p-value
(:mod:`transferkit.auto.selection`), and the table says whether the best transfer strategy is ahead
beyond noise — on validation, and on test where there is one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from torch import Tensor

from transferkit.api import Data, train_classifier
from transferkit.auto.selection import Margin, paired_margin, versus
from transferkit.backbones import create_backbone
from transferkit.engine.config import TrainConfig
from transferkit.strategies.sklearn_probe import CLASSICAL_BASELINES

BASELINES = tuple(CLASSICAL_BASELINES)
DEFAULT_STRATEGIES = ("feature-extraction", "fine-tune", "progressive")


def compare_strategies(
    data: Data,
    backbone: str,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    config: TrainConfig | None = None,
    weights: str | None = "imagenet",
    out: str | Path | None = None,
    log=print,
) -> list[dict]:
    """Train each strategy from the same pretrained weights; one result row each (val metrics, time, speed).

    The classical baselines are added in front when ``strategies`` does not name them.
    """
    config = config or TrainConfig()
    rows, right = [], {}
    for name in [*(b for b in BASELINES if b not in strategies), *strategies]:
        backbone_net = create_backbone(backbone, weights=weights)  # fresh weights for every strategy
        started = time.perf_counter()
        result = train_classifier(
            data, backbone_net, name, config, weights=weights, out=Path(out) / name if out else None, log=log
        )
        seconds = time.perf_counter() - started
        right[name] = _right(result.model, data, config)
        rows.append(_row(name, result, seconds))
    _add_margins(rows, right)
    if out is not None:
        _write(Path(out), rows, backbone, data)
    return rows


def _write(out: Path, rows: list[dict], backbone: str, data: Data) -> None:
    """compare.json, compare.png and a report.html with the table and what the margins say."""
    from transferkit.report import table_report

    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(rows, indent=2))
    plot_comparison(rows, out / "compare.png")
    header = [h for h in rows[0] if h != "vs_classical"] + ["vs classical (val)", "vs classical (test)"]
    cells = [[*(r[h] for h in header[:-2]), _vs_cell(r, "val"), _vs_cell(r, "test")] for r in rows]
    notes = [
        f"Same split and budget for every strategy; each run's own report is in its sub-folder. {data.summary()}.",
        "vs classical: accuracy minus the best classical baseline's (chosen on validation), in points ± the "
        "paired standard error, on the same images.",
        *verdicts(rows),
    ]
    table_report(out, f"transferkit compare: {backbone}", header, cells, notes,
                 [(out / "compare.png", "validation accuracy and wall time per strategy")])  # fmt: skip


def _row(name: str, result, seconds: float) -> dict:
    test = result.test_metrics
    return {
        "strategy": name,
        "val_accuracy": round(result.metrics.accuracy, 4),
        "test_accuracy": round(test.accuracy, 4) if test is not None else None,
        "val_macro_f1": round(result.metrics.f1, 4),
        "best_epoch": result.best_epoch + 1,
        "wall_seconds": round(seconds, 1),
        "train_images_per_second": round(result.images_per_second, 1),
    }


def _right(model, data: Data, config: TrainConfig) -> dict[str, Tensor]:
    """Right or wrong on each validation (and test) image, through the model's own preprocessing."""
    from transferkit.api import rebind
    from transferkit.auto.run import scores_on

    bound = rebind(data, model.data_config)
    splits = {"val": bound.val, "test": bound.test}
    return {split: scores_on(model, images, config)[3] for split, images in splits.items() if images is not None}


def _add_margins(rows: list[dict], right: dict[str, dict[str, Tensor]]) -> None:
    """Each transfer row's paired margin over the best classical baseline (by validation), on val and test."""
    baselines = [r for r in rows if r["strategy"] in BASELINES]
    if not baselines:
        return
    classical = _best(baselines)["strategy"]
    for row in rows:
        if row["strategy"] in BASELINES:
            continue
        row["vs_classical"] = {"baseline": classical}
        for split, flags in right[row["strategy"]].items():
            m = paired_margin(flags, right[classical][split])
            row["vs_classical"][split] = {
                "points": round(m.points, 4), "se": round(m.se, 4), "images": m.images,
                "wins": m.wins, "losses": m.losses, "mcnemar_p": round(m.p_value, 4),
            }  # fmt: skip


def _margin(cell: dict) -> Margin:
    """The Margin of a ``vs_classical`` cell: its points exactly from the counts, not from the rounded value."""
    points = 100 * (cell["wins"] - cell["losses"]) / cell["images"]
    return Margin(points, cell["se"], cell["images"], cell["wins"], cell["losses"])


def _vs_cell(row: dict, split: str) -> str:
    """``+12.3 ± 2.1``: the row's accuracy minus the best classical baseline's on ``split``, ± paired SE."""
    cell = row.get("vs_classical", {}).get(split)
    return "" if cell is None else f"{cell['points']:+.1f} ± {cell['se']:.1f}"


def _best(rows) -> dict | None:
    return max(rows, key=lambda r: (r["val_accuracy"], r.get("val_macro_f1", 0.0)), default=None)


def verdicts(rows: Sequence[dict]) -> list[str]:
    """The best transfer strategy (by validation) against the best classical baseline: on val, then test."""
    best = _best([r for r in rows if "vs_classical" in r])
    if best is None:
        return []
    versus_ = best["vs_classical"]
    names, roles = (
        (best["strategy"], versus_["baseline"]),
        ("the best transfer strategy", "the best classical baseline"),
    )
    lines = [f"on validation: {versus(*names, _margin(versus_['val']), 'validation', roles)}"]
    if "test" in versus_:
        test = versus(*names, _margin(versus_["test"]), "test", roles)
        lines.append(f"on test (reported, never used to choose): {test}")
    return lines


def format_table(rows: Sequence[dict]) -> str:
    head = (
        f"{'strategy':22s} {'val acc':>8s} {'test acc':>8s} {'macro F1':>8s} {'best ep':>7s} {'wall s':>8s} "
        f"{'vs classical (val)':>18s}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        test = "" if r.get("test_accuracy") is None else f"{r['test_accuracy']:.4f}"
        lines.append(
            f"{r['strategy']:22s} {r['val_accuracy']:8.4f} {test:>8s} {r['val_macro_f1']:8.4f} {r['best_epoch']:7d} "
            f"{r['wall_seconds']:8.1f} {_vs_cell(r, 'val'):>18s}"
        )
    return "\n".join([*lines, *verdicts(rows)])


def plot_comparison(rows: Sequence[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(10, 4))
    names = [r["strategy"] for r in rows]
    ax_acc.bar(names, [r["val_accuracy"] for r in rows], color="tab:blue")
    ax_acc.set(ylabel="val accuracy", ylim=(0, 1), title="Accuracy")
    ax_time.bar(names, [r["wall_seconds"] for r in rows], color="tab:orange")
    ax_time.set(ylabel="seconds", title="Wall time")
    for ax in (ax_acc, ax_time):
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
