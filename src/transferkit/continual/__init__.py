"""Continual transfer: EWC, LwF, experience replay (and naive fine-tuning) over task sequences."""

from transferkit.continual import ewc, fine_tune, lwf, progressive, replay  # noqa: F401  (registration)
from transferkit.continual.base import ContinualMethod, continual_methods
from transferkit.continual.runner import ContinualResult, Task, class_incremental_tasks, run_continual

__all__ = [
    "ContinualMethod",
    "ContinualResult",
    "Task",
    "class_incremental_tasks",
    "continual_methods",
    "run_continual",
]
