import numpy as np
import pytest
import torch

from transferkit.engine.lr_finder import lr_range_test, suggest_lr
from transferkit.engine.metrics import classification_metrics
from transferkit.engine.model import build_model
from transferkit.strategies import create_strategy

from .helpers import config, tiny_data


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = list(np.logspace(-6, 0, 61))
    losses = [2.0 - 1.5 / (1 + np.exp(-(np.log10(lr) + 3) * 4)) for lr in lrs[:50]] + [3.0] * 11
    assert suggest_lr(lrs, losses) == pytest.approx(1e-3, rel=0.3)


def test_range_test_restores_weights_and_returns_a_rate_in_range(tmp_path):
    backbone, data = tiny_data(n_per_class=16)
    model = build_model(backbone, 3, data.classes)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = lr_range_test(model, create_strategy("fine-tune"), data.train, config(), 1e-5, 10.0, num_steps=30)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert 1e-5 <= result.suggestion <= 10.0 and len(result.lrs) == len(result.losses) > 5
    assert result.plot(tmp_path / "lr.png").stat().st_size > 1000


def test_suggestion_without_any_finite_loss_is_a_clear_error():
    from transferkit.errors import TrainingError

    with pytest.raises(TrainingError, match="no finite loss"):
        suggest_lr([], [])
    with pytest.raises(TrainingError, match="no finite loss"):
        suggest_lr([1e-5, 1e-4], [float("nan"), float("inf")])


def test_range_test_of_a_peft_strategy_trains_its_parameters():
    from transferkit.backbones import create_backbone

    torch.manual_seed(0)
    _, data = tiny_data(n_per_class=8)
    model = build_model(create_backbone("timm:resnet18", weights=None), 3, data.classes)
    strategy = create_strategy("lora", options={"r": 2})
    seen = []
    original = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        seen.append({id(p) for g in self.param_groups for p in g["params"]})
        return original(self, *args, **kwargs)

    torch.optim.AdamW.step = spy
    try:
        lr_range_test(model, strategy, data.train, config(batch_size=8), 1e-5, 1e-1, num_steps=3)
    finally:
        torch.optim.AdamW.step = original
    lora = {id(p) for n, p in model.named_parameters() if "lora_" in n}
    assert lora and lora <= seen[0]  # the LoRA matrices are optimised, not only the head


def test_metrics_on_a_hand_checked_example():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array(
        [[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.6, 0.2], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]]
    )
    m = classification_metrics(labels, probs, top_k=2)
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # precision per class: 1/2, 2/3, 1/1; recall: 1/2, 1, 1/2
    assert m.precision == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert m.recall == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m.top_k_accuracy == pytest.approx(5 / 6)  # sample 2 (label 0, probs .1 .7 .2) misses the top two
