"""transferkit: transfer learning for computer vision on PyTorch.

Example:
    >>> import transferkit as tk  # doctest: +SKIP
    >>> backbone = tk.create_backbone("efficientnet_lite0")  # doctest: +SKIP
    >>> data = tk.load_data("crystals/", backbone.data_config, preset="microscopy")  # doctest: +SKIP
    >>> result = tk.train_classifier(data, "efficientnet_lite0", "lp-ft", tk.TrainConfig(epochs=10))  # doctest: +SKIP

The names below are imported on first use (PEP 562), so ``import transferkit`` and the command
line start without loading torch, timm and scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transferkit._lazy import lazy_exports
from transferkit.errors import (
    BadImageError,
    ConfigError,
    DataError,
    TrainingError,
    TransferkitError,
    UnknownNameError,
    WeightsNotFoundError,
)

if TYPE_CHECKING:
    from transferkit.api import Data, evaluate, load_data, make_data, train_classifier
    from transferkit.backbones import Backbone, create_backbone
    from transferkit.engine.config import TrainConfig
    from transferkit.engine.loop import FitResult, fit
    from transferkit.engine.model import TransferModel, build_model, load_model
    from transferkit.strategies import create_strategy

_LAZY = {
    "Data": "transferkit.api",
    "evaluate": "transferkit.api",
    "load_data": "transferkit.api",
    "make_data": "transferkit.api",
    "train_classifier": "transferkit.api",
    "Backbone": "transferkit.backbones",
    "create_backbone": "transferkit.backbones",
    "TrainConfig": "transferkit.engine.config",
    "FitResult": "transferkit.engine.loop",
    "fit": "transferkit.engine.loop",
    "TransferModel": "transferkit.engine.model",
    "build_model": "transferkit.engine.model",
    "load_model": "transferkit.engine.model",
    "create_strategy": "transferkit.strategies",
}

__version__ = "0.1.0"
__all__ = [
    "Backbone",
    "BadImageError",
    "ConfigError",
    "Data",
    "DataError",
    "FitResult",
    "TrainConfig",
    "TrainingError",
    "TransferModel",
    "TransferkitError",
    "UnknownNameError",
    "WeightsNotFoundError",
    "build_model",
    "create_backbone",
    "create_strategy",
    "evaluate",
    "fit",
    "load_data",
    "load_model",
    "make_data",
    "train_classifier",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
