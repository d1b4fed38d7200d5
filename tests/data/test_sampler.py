from transferkit.data import EpochSampler


def test_order_depends_only_on_seed_and_epoch():
    a = EpochSampler(50, seed=1, epoch=3)
    list(EpochSampler(50, seed=1, epoch=0))  # drawing another epoch first changes nothing
    assert list(a) == list(EpochSampler(50, seed=1, epoch=3))
    assert list(a) != list(EpochSampler(50, seed=1, epoch=4))


def test_a_fabric_loader_keeps_the_epoch_of_its_sampler():
    """Fabric calls ``sampler.set_epoch(k)`` with k = times its loader was iterated (0 for a fresh loader)."""
    from lightning_fabric import Fabric
    from torch.utils.data import DataLoader

    fabric = Fabric(accelerator="cpu", devices=1)
    orders = []
    for epoch in range(3):
        loader = DataLoader(list(range(20)), batch_size=20, sampler=EpochSampler(20, seed=0, epoch=epoch))
        orders.append(next(iter(fabric.setup_dataloaders(loader, use_distributed_sampler=False))).tolist())
    assert orders[0] != orders[1] != orders[2]
    assert orders[2] == list(EpochSampler(20, seed=0, epoch=2))


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
