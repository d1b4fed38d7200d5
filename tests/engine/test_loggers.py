"""Experiment trackers receive every epoch's numbers."""

import csv

import pytest

from transferkit.api import train_classifier
from transferkit.errors import ConfigError

from .helpers import config, quiet, tiny_data


def test_tensorboard_and_csv_loggers_hold_the_history(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, data = tiny_data()
    result = train_classifier(
        data, _backbone(), "fine-tune", config(epochs=3, loggers=("tensorboard", "csv")), out=tmp_path, log=quiet
    )
    events = EventAccumulator(str(tmp_path / "tensorboard" / "run"))
    events.Reload()
    logged = [e.value for e in events.Scalars("val_loss")]
    assert logged == pytest.approx([r["val_loss"] for r in result.history], abs=1e-6)
    with open(tmp_path / "csv" / "run" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["val_acc"]) for r in rows] == pytest.approx([r["val_acc"] for r in result.history])


def test_unknown_logger_and_missing_mlflow_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="loggers must be among"):
        config(loggers=("wandb",))
    try:
        import mlflow  # noqa: F401
    except ImportError:
        _, data = tiny_data()
        with pytest.raises(ConfigError, match="pip install mlflow"):
            train_classifier(
                data, _backbone(), "fine-tune", config(epochs=1, loggers=("mlflow",)), out=tmp_path, log=quiet
            )


def _backbone():
    from ..conftest import make_tiny_backbone

    return make_tiny_backbone()
