"""LP-FT keeps what the probe learned: the first fine-tuning epoch does not undo it."""

import pytest
import torch

from transferkit.api import train_classifier

from ..engine.helpers import config, quiet, tiny_data


def _lp_ft(freeze_bn: bool, **kw):
    torch.manual_seed(0)
    backbone, data = tiny_data(n_per_class=16, preset="light")
    cfg = config(epochs=4, batch_size=8, lr=3e-3, warmup_epochs=1.0, **kw)
    options = {"probe_epochs": 1, "ft_lr_scale": 0.5, "freeze_bn": freeze_bn}
    return train_classifier(data, backbone, "lp-ft", cfg, strategy_options=options, log=quiet), backbone


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_first_fine_tuning_epoch_keeps_the_probes_validation_loss(freeze_bn):
    """Frozen statistics keep it (the default); batch statistics of 8 images undo the probe."""
    result, _ = _lp_ft(freeze_bn=freeze_bn)
    probe, first_ft = result.history[0], result.history[1]
    assert probe["stage"] == 0 and first_ft["stage"] == 1
    kept = first_ft["val_loss"] <= probe["val_loss"] * 1.1 + 0.02
    assert kept == freeze_bn, (probe["val_loss"], first_ft["val_loss"])


def test_batchnorm_statistics_stay_those_of_pretraining_while_fine_tuning():
    torch.manual_seed(0)
    backbone, _ = tiny_data()
    before = {k: v.clone() for k, v in backbone.state_dict().items() if "running" in k}
    result, trained = _lp_ft(freeze_bn=True)
    after = {k: v for k, v in result.model.backbone.state_dict().items() if "running" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)
    moved = [k for k, v in result.model.backbone.state_dict().items() if "weight" in k]
    assert moved  # the weights did train (checked in the strategy tests); only the statistics stay


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_freeze_bn_is_the_only_difference_in_batchnorm_mode(freeze_bn):
    result, _ = _lp_ft(freeze_bn=freeze_bn)
    tracked = [m.num_batches_tracked.item() for m in result.model.modules() if hasattr(m, "num_batches_tracked")]
    assert (max(tracked) == 0) == freeze_bn
