"""The one training loop and what it needs: :class:`Trainer` runs a :class:`TrainingTask` (a method's
batches and loss) with callbacks, advancing a :class:`TrainState`. See ``ARCHITECTURE.md``."""

from transferkit.engine.callbacks import (
    BestWeights,
    Callback,
    Checkpointer,
    ConsoleLog,
    EarlyStopping,
    Loggers,
    RunDirWriter,
    StageSwitcher,
)
from transferkit.engine.state import TrainState
from transferkit.engine.trainer import EpochStats, StepOutput, Trainer, TrainingTask

__all__ = [
    "BestWeights",
    "Callback",
    "Checkpointer",
    "ConsoleLog",
    "EarlyStopping",
    "EpochStats",
    "Loggers",
    "RunDirWriter",
    "StageSwitcher",
    "StepOutput",
    "TrainState",
    "Trainer",
    "TrainingTask",
]
