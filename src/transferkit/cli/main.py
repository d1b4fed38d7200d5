"""The ``transferkit`` command: a thin typer layer over the public API.

Each command is a plain function in its own module (``cli/fit.py`` defines ``fit``...); this
module alone composes them into the app (typer's one-file-per-command pattern), so no command
module imports this one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from transferkit.cli import (
    adapt,
    advise,
    cka,
    compare,
    continual,
    demo,
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


def build_app() -> typer.Typer:
    """The ``transferkit`` app with every command of :data:`COMMANDS`."""
    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        help="Transfer learning for computer vision: point it at a folder of images.",
    )
    for name, command in COMMANDS.items():
        app.command(name)(command)
    return app


app = build_app()


def main() -> None:
    try:
        app()
    except TransferkitError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        sys.exit(1)


if __name__ == "__main__":
    main()
