"""The views head: a member per column block and one on all columns, probabilities averaged; co-training."""

import pytest
import torch
from torch.nn import functional as F

from transferkit.engine.model import build_model, model_from_spec
from transferkit.errors import ConfigError
from transferkit.heads.views import ViewsHead
from transferkit.semi.self_training import SelfTrainingConfig, Views, self_train

from ..conftest import make_tiny_backbone


def test_output_is_the_log_of_the_members_mean_probability_each_on_its_columns():
    head = ViewsHead(7, 3, blocks=[4, 3], hidden=8).eval()
    x = torch.randn(5, 7)
    with torch.no_grad():
        a = F.softmax(head.members[0](x[:, :4]), 1)
        b = F.softmax(head.members[1](x[:, 4:]), 1)
        c = F.softmax(head.members[2](x), 1)
        torch.testing.assert_close(head(x).exp(), (a + b + c) / 3)


def test_blocks_must_cover_the_features():
    with pytest.raises(ConfigError, match=r"summing to its 7 features, got blocks=\[4, 4\]"):
        ViewsHead(7, 3, blocks=[4, 4])


def test_a_views_head_is_saved_and_rebuilt_from_its_spec():
    model = build_model(make_tiny_backbone(), 3, head="views", blocks=[16, 16], hidden=8).eval()
    rebuilt = model_from_spec(model.spec(), backbone=make_tiny_backbone())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt.eval()(x))


def test_each_member_learns_from_its_own_columns_only():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    signal = F.one_hot(y, 3).float() * 4 + torch.randn(300, 3, generator=gen)  # block 0: the class
    noise = torch.randn(300, 5, generator=gen)  # block 1: nothing
    x = torch.cat([signal, noise], 1)
    labelled, val = Views(x[:150], []), (x[150:], y[150:])
    cfg = SelfTrainingConfig(rounds=0, steps=200, min_steps=200, hidden=16)
    head, _, _ = self_train(labelled, y[:150], Views(x[:0], []), val, 3, cfg, log=lambda _: None, blocks=[3, 5])
    with torch.no_grad():
        on_signal = (head.members[0](x[150:, :3]).argmax(1) == y[150:]).float().mean()
        on_noise = (head.members[1](x[150:, 3:]).argmax(1) == y[150:]).float().mean()
    assert isinstance(head, ViewsHead) and on_signal > 0.95 and on_noise < 0.6  # chance: 1/3
