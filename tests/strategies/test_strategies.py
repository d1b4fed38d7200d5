import pytest
import torch

from transferkit.api import train_classifier
from transferkit.engine.optim import param_groups
from transferkit.strategies import create_strategy
from transferkit.strategies.base import Stage, geometric_scales

from ..engine.helpers import config, quiet, tiny_data


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("cache", ["auto", "off"])
def test_feature_extraction_leaves_backbone_weights_and_bn_stats_bit_identical(cache):
    backbone, data = tiny_data(preset="light")
    before = _snapshot(backbone)
    result = train_classifier(data, backbone, "feature-extraction", config(cache=cache), log=quiet)
    after = result.model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "frozen backbone changed"
    if cache == "auto":  # cached features: the linear head is solved in one step, below chance's ln(3) ≈ 1.10
        assert len(result.history) == 1 and result.history[0]["train_loss"] < 1.0
    else:  # no cache: epochs of SGD
        assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_partial_fine_tuning_trains_only_the_deepest_groups():
    backbone, data = tiny_data()
    groups = backbone.layer_groups()
    before = [[p.clone() for p in g.parameters()] for g in groups]
    train_classifier(data, backbone, "partial", config(), strategy_options={"groups": 1}, log=quiet)
    for old, group in zip(before[:-1], groups[:-1]):
        assert all(torch.equal(a, b) for a, b in zip(old, group.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(before[-1], groups[-1].parameters()))
    bn = next(groups[0].batchnorms())
    assert bn.num_batches_tracked.item() == 0  # frozen BN kept its running statistics


def test_train_bn_lets_frozen_batchnorm_update_statistics():
    backbone, data = tiny_data()
    train_classifier(data, backbone, "feature-extraction", config(cache="off", train_bn=True), log=quiet)
    assert next(backbone.layer_groups()[0].batchnorms()).num_batches_tracked.item() > 0


def test_discriminative_learning_rates_are_geometric_from_shallow_to_deep():
    backbone, _ = tiny_data()
    groups = backbone.layer_groups()
    stage = create_strategy("discriminative", ratio=0.01).stages(5, len(groups))[0]
    for g in groups:
        g.requires_grad_(True)
    lrs = {}
    for entry in param_groups(groups, torch.nn.Linear(2, 2), stage, config(lr=0.1)):
        lrs[entry["name"]] = entry["lr"]
    values = [lrs[f"group{i}"] for i in range(len(groups))]
    assert values[0] == pytest.approx(0.001) and values[-1] == pytest.approx(0.1) and lrs["head"] == pytest.approx(0.1)
    ratios = [b / a for a, b in zip(values, values[1:])]
    assert ratios == pytest.approx([ratios[0]] * len(ratios))
    assert geometric_scales(1, 0.1) == (1.0,)


def test_progressive_unfreezes_deepest_first_and_spans_all_epochs():
    stages = create_strategy("progressive", epochs_per_stage=2).stages(epochs=9, num_groups=3)
    assert [(s.start, s.end, s.trainable) for s in stages] == [(0, 2, 0), (2, 4, 1), (4, 6, 2), (6, 9, 3)]
    short = create_strategy("progressive", epochs_per_stage=2).stages(epochs=3, num_groups=3)
    assert [(s.start, s.end, s.trainable) for s in short] == [(0, 2, 0), (2, 3, 1)]


def test_progressive_trains_more_parameters_each_stage():
    backbone, data = tiny_data()
    assert len(backbone.layer_groups()) == 4
    result = train_classifier(
        data, backbone, "progressive", config(epochs=5), strategy_options={"epochs_per_stage": 1}, log=quiet
    )
    counts = [row["trainable_params"] for row in result.history]
    assert counts == sorted(counts) and len(set(counts)) == 5
    # while a bottom group is frozen its outputs are cached; the last stage runs the whole network
    assert [row["cached"] for row in result.history] == [True, True, True, True, False]


def test_lp_ft_probes_then_fine_tunes_everything_at_a_lower_rate():
    stages = create_strategy("lp-ft", probe_epochs=2, ft_lr_scale=0.1).stages(5, 4)
    assert stages == [Stage(0, 2, 0), Stage(2, 5, -1, (0.1,) * 4, 0.1, bn_eval=True)]  # BatchNorm frozen by default
    stages = create_strategy("lp-ft", probe_epochs=2, ft_lr_scale=0.1, freeze_bn=False).stages(5, 4)
    assert stages[1].bn_eval is False


def test_unknown_strategy_and_bad_options():
    from transferkit.errors import ConfigError, UnknownNameError

    with pytest.raises(UnknownNameError, match="Did you mean 'fine-tune'"):
        create_strategy("finetune")
    with pytest.raises(ConfigError, match="groups >= 1"):
        create_strategy("partial", groups=0)


def test_sklearn_probe_on_frozen_features():
    backbone, data = tiny_data(n_per_class=12)
    result = train_classifier(data, backbone, "sklearn-logreg", config(), log=quiet)
    assert result.metrics.accuracy > 0.9
