from transferkit.data import EpochSampler


def test_order_depends_only_on_seed_and_epoch():
    a, b = EpochSampler(50, seed=1), EpochSampler(50, seed=1)
    a.set_epoch(3)
    b.set_epoch(0)
    list(b)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)


def test_rank_shards_interleave_into_the_single_process_batches():
    single = list(EpochSampler(40, seed=0))
    ranks = [list(EpochSampler(40, seed=0, rank=r, world_size=2)) for r in range(2)]
    batch = 4  # per rank; global 8
    for k in range(5):
        union = sorted(ranks[0][k * batch : (k + 1) * batch] + ranks[1][k * batch : (k + 1) * batch])
        assert union == sorted(single[k * 2 * batch : (k + 1) * 2 * batch])


def test_weighted_sampling_balances_classes():
    labels = [0] * 90 + [1] * 10
    weights = [1 / 90 if y == 0 else 1 / 10 for y in labels]
    drawn = [labels[i] for i in EpochSampler(100, weights=weights)]
    assert 30 < sum(drawn) < 70
