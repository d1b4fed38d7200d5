"""Experiment tracking: TensorBoard and CSV (Lightning Fabric's loggers), MLflow when installed.

Every logger receives the numeric columns of each epoch's row (losses, accuracies, lr,
images/s) with the epoch as step, and the run's configuration as hyperparameters. Only the
global-rank-0 process logs. Resumed runs log into the same folders (``version="run"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferkit.errors import ConfigError

LOGGERS = ("tensorboard", "csv", "mlflow")


class MLflowLogger:
    """Minimal MLflow adapter with the Fabric logger methods used here; a local file store by default."""

    def __init__(self, root_dir: Path, experiment: str = "transferkit") -> None:
        try:
            import mlflow
        except ImportError:
            raise ConfigError(
                "The mlflow logger needs MLflow: pip install mlflow (or drop 'mlflow' from --loggers)."
            ) from None
        self.mlflow = mlflow
        if mlflow.get_tracking_uri().startswith("file:") or "MLFLOW_TRACKING_URI" not in __import__("os").environ:
            mlflow.set_tracking_uri((root_dir / "mlruns").resolve().as_uri())
        mlflow.set_experiment(experiment)
        self.run = mlflow.start_run(run_name=root_dir.name)

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        self.mlflow.log_params({k: str(v)[:250] for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics(metrics, step=step)

    def finalize(self, status: str) -> None:
        self.mlflow.end_run("FINISHED" if status == "success" else "FAILED")


def make_loggers(names: tuple[str, ...] | list[str], out: Path | None) -> list[Any]:
    unknown = sorted(set(names) - set(LOGGERS))
    if unknown:
        raise ConfigError(f"Unknown logger(s) {unknown}; choose from {LOGGERS}.")
    if names and out is None:
        raise ConfigError(f"Loggers {list(names)} write into the run folder; give an output folder (--out).")
    loggers: list[Any] = []
    for name in names:
        if name == "tensorboard":
            try:
                from lightning_fabric.loggers import TensorBoardLogger

                loggers.append(TensorBoardLogger(out, name="tensorboard", version="run", default_hp_metric=False))
            except ModuleNotFoundError:
                raise ConfigError(
                    "The tensorboard logger needs tensorboard: pip install 'transferkit[tracking]'."
                ) from None
        elif name == "csv":
            from lightning_fabric.loggers import CSVLogger

            loggers.append(CSVLogger(out, name="csv", version="run", flush_logs_every_n_steps=1))
        else:
            loggers.append(MLflowLogger(out))
    return loggers


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return flat


def log_epoch(loggers: list[Any], row: dict[str, Any]) -> None:
    metrics = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for logger in loggers:
        logger.log_metrics(metrics, step=int(row["epoch"]))


def log_hyperparams(loggers: list[Any], config: dict[str, Any]) -> None:
    """The run's configuration, flattened; the CSV logger has no place for it (config.yaml does)."""
    from lightning_fabric.loggers import CSVLogger

    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            logger.log_hyperparams(flatten(config))
