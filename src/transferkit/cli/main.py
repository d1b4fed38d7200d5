"""The ``transferkit`` command: a thin typer layer over the public API.

Each command is a plain function in its own module (``cli/fit.py`` defines ``fit``...); this
module alone composes them into the app (typer's one-file-per-command pattern), so no command
module imports this one.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Optional

import typer

from transferkit.cli import (
    adapt,
    advise,
    anomaly,
    cka,
    compare,
    continual,
    demo,
    detect,
    distill,
    evaluate,
    explain,
    export,
    extract,
    fewshot,
    fit,
    info,
    lr_find,
    multisource,
    predict,
    probe,
    rank,
    segment,
    serve,
    zeroshot,
)
from transferkit.errors import TransferkitError

COMMANDS: dict[str, Callable[..., None]] = {
    "adapt": adapt.adapt,
    "advise": advise.advise,
    "cka": cka.cka,
    "compare": compare.compare,
    "continual": continual.continual,
    "demo": demo.demo,
    "distill": distill.distill,
    "evaluate": evaluate.evaluate,
    "explain": explain.explain,
    "export": export.export,
    "extract": extract.extract,
    "fewshot": fewshot.fewshot,
    "fit": fit.fit,
    "info": info.info,
    "lr-find": lr_find.lr_find,
    "multisource": multisource.multisource,
    "predict": predict.predict,
    "probe": probe.probe,
    "rank": rank.rank,
    "serve": serve.serve,
    "zeroshot": zeroshot.zeroshot,
}


GROUPS: dict[str, tuple[str, dict[str, Callable[..., None]]]] = {
    "segment": ("Semantic segmentation from a pretrained encoder: fit, evaluate, predict.", segment.COMMANDS),
    "detect": ("Object detection and counting from a pretrained backbone: fit, evaluate, predict.", detect.COMMANDS),
    "anomaly": (
        "Defect detection from normal images only (PatchCore, PaDiM): fit, evaluate, predict.",
        anomaly.COMMANDS,
    ),
}

NO_COMPUTE = {"info"}  # commands that run no model: no --threads


def with_threads(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with a ``--threads`` option: torch's CPU threads, set before it runs.

    Default: the CPUs this process may use (affinity, cgroup quota); ``auto`` also leaves out those
    other processes keep busy (:func:`transferkit.engine.threads.threads_for`).
    """
    option = typer.Option(
        None, help="CPU threads for torch: N, or auto (allowed CPUs minus busy ones). Default: allowed CPUs."
    )
    threads = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[str])

    @functools.wraps(command)
    def run(*args, threads: Optional[str] = None, **kwargs) -> None:
        from transferkit.engine.threads import configure_threads

        configure_threads(threads)
        return command(*args, **kwargs)

    signature = inspect.signature(command)
    run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), threads])  # type: ignore[attr-defined]
    run.__annotations__ = {**command.__annotations__, "threads": Optional[str]}
    return run


def build_app() -> typer.Typer:
    """The ``transferkit`` app with every command of :data:`COMMANDS` (compute commands with ``--threads``)."""
    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        help="Transfer learning for computer vision: point it at a folder of images.",
    )
    for name, command in COMMANDS.items():
        app.command(name)(command if name in NO_COMPUTE else with_threads(command))
    for group, (help_text, commands) in GROUPS.items():
        sub = typer.Typer(no_args_is_help=True, help=help_text)
        for name, command in commands.items():
            sub.command(name)(with_threads(command))
        app.add_typer(sub, name=group)
    return app


app = build_app()


def main() -> None:
    try:
        app()
    except TransferkitError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        sys.exit(1)
    except SystemExit as exc:  # typer ends every run with one; 0 (or None) is success
        if exc.code in (0, None):
            _close_process_group()
        raise


def _close_process_group() -> None:
    """After a command succeeded under ``torchrun``: close its process group before the interpreter exits."""
    if "torch.distributed" in sys.modules:  # never import torch here: ``--help`` stays fast
        from transferkit.engine.distributed import close_process_group

        close_process_group()


if __name__ == "__main__":
    main()
