"""Several strategies on one split and one budget: the classic transfer-learning comparison.

The classical baselines (raw pixels and HOG descriptors, each → RBF SVM) always run first, so the
margin over what a user would try without transfer learning is in every table. When the data
has a test split, each row also has its test accuracy (reported, never used to choose).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from transferkit.api import Data, train_classifier
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
    rows = []
    for name in [*(b for b in BASELINES if b not in strategies), *strategies]:
        backbone_net = create_backbone(backbone, weights=weights)  # fresh weights for every strategy
        started = time.perf_counter()
        result = train_classifier(
            data, backbone_net, name, config, weights=weights, out=Path(out) / name if out else None, log=log
        )
        test = result.test_metrics
        rows.append(
            {
                "strategy": name,
                "val_accuracy": round(result.metrics.accuracy, 4),
                "test_accuracy": round(test.accuracy, 4) if test is not None else None,
                "val_macro_f1": round(result.metrics.f1, 4),
                "best_epoch": result.best_epoch + 1,
                "wall_seconds": round(time.perf_counter() - started, 1),
                "train_images_per_second": round(result.images_per_second, 1),
            }
        )
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "compare.json").write_text(json.dumps(rows, indent=2))
        plot_comparison(rows, Path(out) / "compare.png")
        from transferkit.report import table_report

        header = list(rows[0])
        table_report(
            Path(out),
            f"transferkit compare: {backbone}",
            header,
            [[r[h] for h in header] for r in rows],
            [
                "Same split and budget for every strategy; each run's own report is in its sub-folder. "
                f"{data.summary()}."
            ],
            [(Path(out) / "compare.png", "validation accuracy and wall time per strategy")],
        )
    return rows


def format_table(rows: Sequence[dict]) -> str:
    head = f"{'strategy':22s} {'val acc':>8s} {'test acc':>8s} {'macro F1':>8s} {'best ep':>7s} {'wall s':>8s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        test = "" if r.get("test_accuracy") is None else f"{r['test_accuracy']:.4f}"
        lines.append(
            f"{r['strategy']:22s} {r['val_accuracy']:8.4f} {test:>8s} {r['val_macro_f1']:8.4f} {r['best_epoch']:7d} "
            f"{r['wall_seconds']:8.1f}"
        )
    best = max((r for r in rows if r["strategy"] not in BASELINES), key=lambda r: r["val_accuracy"], default=None)
    classical = max((r for r in rows if r["strategy"] in BASELINES), key=lambda r: r["val_accuracy"], default=None)
    if best and classical:
        margin = 100 * (best["val_accuracy"] - classical["val_accuracy"])
        verdict = "ahead of" if margin > 0 else "NOT ahead of"
        lines.append(
            f"best transfer strategy ({best['strategy']}) is {verdict} the best classical baseline "
            f"({classical['strategy']}) by {margin:+.1f} points of validation accuracy"
        )
    return "\n".join(lines)


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
