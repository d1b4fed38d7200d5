"""``transferkit fewshot DATA --way 5 --shot 1,5``: episodic few-shot evaluation on novel classes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def fewshot(
    data: Path = typer.Argument(..., help="Folder of class sub-folders (all splits are pooled), or a CSV."),
    way: int = typer.Option(5),
    shot: str = typer.Option("1,5", help="Comma-separated shots."),
    query: int = typer.Option(15, help="Query images per class and episode."),
    methods: str = typer.Option("simpleshot,fine-tune,protonet,matching,relation,maml,reptile"),
    novel: Optional[int] = typer.Option(None, help="Novel (test) classes; the rest meta-train (default: half)."),
    episodes: int = typer.Option(600, help="Evaluation episodes."),
    meta_episodes: int = typer.Option(1000, help="Meta-training episodes on base classes."),
    backbone: str = typer.Option("efficientnet_lite0"),
    weights: str = typer.Option("imagenet"),
    image_size: Optional[int] = typer.Option(None),
    batch_size: int = typer.Option(64),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, help="Write results.json here."),
) -> None:
    """Pretrained features, N-way K-shot episodes on held-out classes, accuracy ± 95% CI per method."""
    import json
    from dataclasses import asdict

    import torch

    from transferkit.backbones import create_backbone
    from transferkit.cli._common import features_of_images, labelled_images
    from transferkit.fewshot import run_fewshot, split_classes

    classes, samples = labelled_images(data, seed)
    n_novel = novel or max(way, len(classes) // 2)
    _check_classes(data, len(classes), way, n_novel, novel is not None)  # before the features: fail fast
    bb = create_backbone(backbone, weights=weights)
    features, labels = features_of_images(bb, samples, image_size, batch_size)
    _, novel_classes = split_classes(labels, n_novel, seed)
    typer.echo(
        f"{len(samples)} images, {len(classes)} classes; novel (evaluation) classes: "
        f"{[classes[c] for c in novel_classes]}"
    )
    results = run_fewshot(
        features,
        torch.as_tensor(labels),
        novel_classes,
        [m.strip() for m in methods.split(",") if m.strip()],
        way=way,
        shots=[int(s) for s in shot.split(",") if s.strip()],
        query=query,
        episodes=episodes,
        meta_episodes=meta_episodes,
        seed=seed,
        log=typer.echo,
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
        typer.echo(f"results: {out / 'results.json'}")


def _check_classes(data: Path, classes: int, way: int, novel: int, given: bool) -> None:
    """``way``-way episodes on ``novel`` held-out classes, the other classes (at least one) to meta-train on."""
    from transferkit.errors import ConfigError

    if way < 2:
        raise ConfigError(f"--way {way}: an episode needs at least 2 classes to tell apart.")
    if way >= classes:
        raise ConfigError(
            f"--way {way}: {data} has {classes} classes, and episodes are drawn from held-out (novel) classes, "
            f"leaving at least one to meta-train on; use --way {classes - 1} or fewer."
        )
    if given and not way <= novel < classes:
        raise ConfigError(
            f"--novel {novel}: need between --way ({way}) and {classes - 1} novel classes ({data} has {classes})."
        )
