"""load_model: a checkpoint of another task, or not a transferkit one, is refused with the command to use."""

import pytest
import torch

from transferkit.engine.model import load_model
from transferkit.errors import ConfigError


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"spec": {"task": "anomaly"}, "state": {}}, "is a transferkit anomaly model, not a classifier: use "
                                                     "transferkit anomaly evaluate|predict"),
        ({"spec": {"task": "detect"}, "state_dict": {}}, "use transferkit detect evaluate|predict"),
        ({"spec": {"task": "segment"}, "state_dict": {}}, "use transferkit segment evaluate|predict"),
        ({"weight": torch.zeros(2)}, "is not a transferkit checkpoint (no model spec in it)"),
        ({"spec": {"backbone": "resnet18"}, "state_dict": {}}, "holds no classifier spec (keys: ['backbone'])"),
    ],
)  # fmt: skip
def test_a_checkpoint_that_is_not_a_classifier_names_the_file_and_the_command(tmp_path, payload, message):
    torch.save(payload, tmp_path / "model.pt")
    with pytest.raises(ConfigError) as raised:
        load_model(tmp_path / "model.pt")
    assert str(tmp_path / "model.pt") in str(raised.value) and message in str(raised.value)
