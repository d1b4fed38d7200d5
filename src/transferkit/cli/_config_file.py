"""``--config FILE``: options from a YAML file, overridden by the flags given on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from transferkit.errors import TransferkitError


def merge_config_file(ctx: typer.Context, params: dict[str, Any], config_file: Path | None) -> dict[str, Any]:
    """Options from a YAML file, overridden by every flag given on the command line."""
    if config_file is None:
        return params
    try:
        loaded = yaml.safe_load(config_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TransferkitError(f"Cannot read config file {config_file}: {exc}") from None
    if not isinstance(loaded, dict):
        raise TransferkitError(f"{config_file} must hold a mapping of option: value, got {type(loaded).__name__}.")
    merged = dict(params)
    for key, value in loaded.items():
        name = str(key).replace("-", "_")
        if name not in params:
            raise TransferkitError(f"Unknown option {key!r} in {config_file}. Options: {', '.join(sorted(params))}.")
        if not given_on_command_line(ctx, name):
            merged[name] = value
    return merged


def given_on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not left at its default)."""
    source = ctx.get_parameter_source(name)
    # compare by name: typer may ship its own copy of click's ParameterSource enum
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")
