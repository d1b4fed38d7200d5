"""``transferkit adapt SOURCE TARGET --method dann``: unsupervised domain adaptation."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def adapt(
    source: Path = typer.Argument(..., help="Labelled source images: class sub-folders (or train/ val/)."),
    target: Path = typer.Argument(..., help="Target images: flat folder, or class sub-folders (labels only reported)."),
    method: str = typer.Option("dann", help="Comma-separated: dan, coral, dann, cdan, adda (source-only always runs)."),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    epochs: int = typer.Option(20),
    batch_size: int = typer.Option(32),
    lr: float = typer.Option(1e-3),
    trade_off: float = typer.Option(1.0, help="Weight of the adaptation loss."),
    bottleneck: int = typer.Option(256),
    backbone_groups: int = typer.Option(0, help="Deepest layer groups trained (0: frozen, features cached)."),
    select: str = typer.Option("source-val", help="Model selection: source-val or last (never target labels)."),
    image_size: Optional[int] = typer.Option(None),
    val_fraction: float = typer.Option(0.2),
    seed: int = typer.Option(0),
    out: Path = typer.Option(Path("runs/adapt"), help="Folder for the adapted model(s) and results.json."),
    resume: bool = typer.Option(False, help="Continue killed runs from their checkpoints in OUT/<method>-checkpoints."),
) -> None:
    """Train on SOURCE, adapt to unlabelled TARGET; print source-only vs adapted target accuracy."""
    import json

    from transferkit.adaptation import AdaptConfig
    from transferkit.adaptation import adapt as run_adapt
    from transferkit.adaptation.data import load_target
    from transferkit.adaptation.measures import domain_shift
    from transferkit.api import load_data
    from transferkit.backbones import create_backbone
    from transferkit.engine.callbacks import Checkpointer
    from transferkit.inference import dataset_features

    bb = create_backbone(backbone, weights=weights)
    data = load_data(source, bb.data_config, preset="none", image_size=image_size, val_fraction=val_fraction, seed=seed)
    dc = data.data_config
    target_set, labelled = load_target(target, data.classes, dc.input_size, dc.mean, dc.std, dc.interpolation)
    typer.echo(
        f"source: {data.summary()}; target: {len(target_set)} images "
        f"({'labelled: accuracy reported, never used for training or selection' if labelled else 'unlabelled'})"
    )
    f_s, _ = dataset_features(bb, data.train_eval, batch_size)
    f_t, _ = dataset_features(bb, target_set, batch_size)
    shift = domain_shift(f_s.numpy(), f_t.numpy(), seed=seed)
    typer.echo("domain shift of backbone features: " + ", ".join(f"{k} {v:.4f}" for k, v in shift.items()))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    shared_backbone = create_backbone(backbone, weights=weights)
    feature_cache: dict = {}  # frozen backbone: features computed once for every method
    for name in ["source-only", *[m.strip() for m in method.split(",") if m.strip() and m.strip() != "source-only"]]:
        config = AdaptConfig(
            method=name,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            trade_off=trade_off,
            bottleneck=bottleneck,
            backbone_groups=backbone_groups,
            select=select,
            seed=seed,
        )
        typer.echo(f"\n== {name}")
        checkpoints, facts = out / f"{name}-checkpoints", _facts(config, source, target, backbone, weights, dc)
        result = run_adapt(
            shared_backbone if backbone_groups == 0 else create_backbone(backbone, weights=weights),
            data.classes,
            data.train_eval,
            data.val,
            target_set,
            target_set if labelled else None,
            config,
            log=typer.echo,
            feature_cache=feature_cache,
            callbacks=[Checkpointer(checkpoints, resume and (checkpoints / "last.pt").is_file(), facts)],
        )
        result.model.save(out / f"{name}.pt")
        rows.append(_result_row(name, result))
    (out / "results.json").write_text(json.dumps({"domain_shift": shift, "runs": rows}, indent=2))
    _write_report(out, f"transferkit adapt: {source.name} → {target.name} ({backbone})", rows, shift)
    _print_table(rows, labelled)
    typer.echo(f"models and results.json in {out}")


def _facts(config, source: Path, target: Path, backbone: str, weights: str, data_config) -> dict:
    """What one method's run is (its checkpoints record it; a --resume with other values is refused)."""
    import dataclasses

    return {"adapt": dataclasses.asdict(config), "source": str(source.resolve()), "target": str(target.resolve()),
            "backbone": backbone, "weights": weights, "image_size": data_config.input_size}  # fmt: skip


def _result_row(name: str, result) -> dict:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return {
        "method": name,
        "selected_epoch": result.selected_epoch + 1,
        "source_val_acc": round(result.source_val_accuracy, 4),
        "target_acc": rounded(result.target_accuracy),
        "oracle_target_acc": rounded(result.oracle_target_accuracy),
        "seconds": round(result.seconds, 1),
    }


def _write_report(out: Path, title: str, rows: list[dict], shift: dict[str, float]) -> None:
    from transferkit.report import table_report

    header = list(rows[0])
    notes = [
        "Domain shift of the backbone features: " + ", ".join(f"{k} {v:.4f}" for k, v in shift.items()),
        "Model selection used source validation data only; target labels, when present, only report accuracy. "
        "The oracle column picks the best epoch with target labels and is not a usable result.",
    ]
    table_report(out, title, header, [[r[h] if r[h] is not None else "-" for h in header] for r in rows], notes)


def _print_table(rows: list[dict], labelled: bool) -> None:
    typer.echo(f"\n{'method':12s} {'source val':>10s} {'target':>8s} {'oracle*':>8s} {'seconds':>8s}")
    for r in rows:
        target_acc = "-" if r["target_acc"] is None else f"{r['target_acc']:.4f}"
        oracle = "-" if r["oracle_target_acc"] is None else f"{r['oracle_target_acc']:.4f}"
        typer.echo(f"{r['method']:12s} {r['source_val_acc']:10.4f} {target_acc:>8s} {oracle:>8s} {r['seconds']:8.1f}")
    if labelled:
        typer.echo("* oracle: best target accuracy over epochs, chosen with target labels; not a usable result.")
