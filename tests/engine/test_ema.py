"""EMA of weights: what is validated and saved, and resumed exactly."""

import pytest
import torch

from transferkit.api import train_classifier
from transferkit.engine.checkpoint import load_checkpoint
from transferkit.engine.model import TransferModel

from .helpers import config, dying_log, quiet, tiny_data


def _fit(out, log=quiet, **kw):
    torch.manual_seed(0)
    backbone, data = tiny_data(preset="light")
    cfg = config(epochs=3, ema_decay=0.9, **kw)
    return train_classifier(data, backbone, "fine-tune", cfg, out=out, log=log, report=False), data


def test_saved_best_weights_are_the_ema_and_differ_from_the_raw_weights(tmp_path):
    result, data = _fit(tmp_path)
    last = load_checkpoint(tmp_path / "last.pt")
    best = load_checkpoint(tmp_path / "best.pt")
    assert last["ema"] is not None and last["ema_step"] > 0
    raw_head = last["state_dict"]["head.fc.weight"]
    assert not torch.equal(raw_head, last["ema"]["head.fc.weight"])
    if best["epoch"] == last["epoch"]:
        assert torch.equal(best["state_dict"]["head.fc.weight"], last["ema"]["head.fc.weight"])
    # the validation loss logged for the best epoch is that of the saved (EMA) weights
    model: TransferModel = result.model.eval()
    x = torch.stack([data.val[i][0] for i in range(len(data.val))])
    y = torch.tensor([data.val[i][1] for i in range(len(data.val))])
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(x), y).item()
    logged = next(r["val_loss"] for r in result.history if r["epoch"] == result.best_epoch)
    assert abs(loss - logged) < 1e-4


def test_resume_with_ema_continues_exactly(tmp_path):
    full, _ = _fit(tmp_path / "full")
    path = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        _fit(path, log=dying_log(3))
    assert len(load_checkpoint(path / "last.pt")["history"]) == 2
    torch.manual_seed(0)
    backbone, data = tiny_data(preset="light")
    resumed = train_classifier(
        data, backbone, "fine-tune", config(epochs=3, ema_decay=0.9), out=path, resume=True, log=quiet, report=False
    )
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in full.history]
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_probe_solved_in_one_step_is_what_the_ema_validates():
    """LP-FT with EMA: the average starts from the solved probe (it was the random head before: val at chance)."""
    runs = []
    for decay in (0.0, 0.999):
        torch.manual_seed(0)
        backbone, data = tiny_data()
        cfg = config(epochs=2, ema_decay=decay)
        options = {"probe_epochs": 1}
        runs.append(train_classifier(data, backbone, "lp-ft", cfg, strategy_options=options, log=quiet, report=False))
    probe_without, probe_with = (run.history[0] for run in runs)
    assert probe_with["val_loss"] == pytest.approx(probe_without["val_loss"], abs=1e-6)
    assert probe_with["val_acc"] == probe_without["val_acc"] > 0.9
