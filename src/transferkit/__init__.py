"""transferkit: transfer learning for computer vision on PyTorch.

Example:
    >>> import transferkit as tk  # doctest: +SKIP
    >>> backbone = tk.create_backbone("efficientnet_lite0")  # doctest: +SKIP
    >>> data = tk.load_data("crystals/", backbone.data_config, preset="microscopy")  # doctest: +SKIP
    >>> result = tk.train_classifier(data, "efficientnet_lite0", "lp-ft", tk.TrainConfig(epochs=10))  # doctest: +SKIP
"""

from transferkit.api import Data, evaluate, load_data, make_data, train_classifier
from transferkit.backbones import Backbone, create_backbone
from transferkit.engine.config import TrainConfig
from transferkit.engine.loop import FitResult, fit
from transferkit.engine.model import TransferModel, build_model, load_model
from transferkit.errors import (
    BadImageError,
    ConfigError,
    DataError,
    TrainingError,
    TransferkitError,
    UnknownNameError,
    WeightsNotFoundError,
)
from transferkit.strategies import create_strategy

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
