"""Anomaly detection: the coreset covers every cluster, distances and Mahalanobis scores match
independent formulas, the MVTec layout is read with clear errors and warnings, a fitted model saves and
reloads to the same scores, and the CLI writes scores, heatmaps and a report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferkit.anomaly import PaDiM, PatchCore, build_anomaly_model, load_anomaly_model, read_anomaly_folder
from transferkit.anomaly.defects import write_defects
from transferkit.anomaly.metrics import image_auroc, pixel_auroc
from transferkit.anomaly.patchcore import greedy_coreset, nearest_distance
from transferkit.anomaly.run import fit_anomaly
from transferkit.errors import ConfigError, DataError


@pytest.mark.parametrize("seed", range(5))
def test_the_greedy_coreset_keeps_one_point_of_every_cluster(seed):
    points = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [10.0]])
    chosen = set(greedy_coreset(points, 3, seed=seed).tolist())
    assert len(chosen & {0, 1, 2}) == 1 and len(chosen & {3, 4}) == 1 and 5 in chosen


@pytest.mark.parametrize("block, regions", [(7, 5), (512, 1024)])
def test_each_coreset_pick_is_the_point_farthest_from_the_earlier_picks(block, regions):
    rng = np.random.default_rng(3)
    points = rng.normal(size=(300, 4)) + 4 * rng.normal(size=(6, 4)).repeat(50, axis=0)  # 6 clusters
    chosen = greedy_coreset(torch.tensor(points, dtype=torch.float32), 40, seed=1, block=block, regions=regions)
    assert len(set(chosen.tolist())) == 40
    for k in range(1, 40):  # brute force in float64: the k-th pick is (within rounding) the farthest point
        gaps = np.sqrt(((points[:, None] - points[chosen[:k].numpy()][None]) ** 2).sum(-1)).min(1)
        assert gaps[chosen[k]] == pytest.approx(gaps.max(), rel=1e-4)


def test_nearest_distances_match_a_brute_force_numpy_search():
    rng = np.random.default_rng(0)
    queries, bank = rng.normal(size=(50, 7)), rng.normal(size=(30, 7))
    expected = np.sqrt(((queries[:, None] - bank[None]) ** 2).sum(-1)).min(1)
    got = nearest_distance(torch.tensor(queries, dtype=torch.float32), torch.tensor(bank, dtype=torch.float32), 8)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_patchcore_scores_a_patch_by_its_distance_to_the_nearest_normal_one():
    method = PatchCore(coreset=1.0)
    normal = torch.tensor([[0.0, 0.0], [3.0, 4.0]]).T.reshape(1, 2, 1, 2)  # two patches: (0, 0) and (3, 4)
    method.fit(normal)
    query = torch.tensor([[6.0, 8.0], [0.0, 0.0]]).T.reshape(1, 2, 1, 2)  # (6, 8): 5 from (3, 4); (0, 0): 0
    torch.testing.assert_close(method.patch_scores(query), torch.tensor([[[5.0, 0.0]]]))


def test_padim_scores_are_mahalanobis_distances_to_each_positions_gaussian():
    rng = np.random.default_rng(1)
    normal = rng.normal(size=(40, 3, 2, 2)) * [[[1.0]], [[2.0]], [[0.5]]]
    method = PaDiM(features=3)
    method.fit(torch.tensor(normal, dtype=torch.float32))
    query = rng.normal(size=(1, 3, 2, 2))
    got = method.patch_scores(torch.tensor(query, dtype=torch.float32))[0]
    for y in range(2):
        for x in range(2):
            samples = normal[:, :, y, x]
            mean, cov = samples.mean(0), np.cov(samples, rowvar=False) + 0.01 * np.eye(3)
            delta = query[0, :, y, x] - mean
            assert float(got[y, x]) == pytest.approx(np.sqrt(delta @ np.linalg.inv(cov) @ delta), rel=1e-4)


def test_aurocs_match_hand_counted_pairs():
    # 2 normal × 2 anomalous pairs: (0.1 < 0.4), (0.1 < 0.9), (0.5 > 0.4), (0.5 < 0.9) → 3 of 4 ordered right
    assert image_auroc(torch.tensor([0.1, 0.5, 0.4, 0.9]), [0, 0, 1, 1]) == pytest.approx(0.75)
    maps = torch.tensor([[[0.0, 1.0], [0.2, 0.9]]])
    assert pixel_auroc(maps, torch.tensor([[[0, 1], [0, 1]]])) == pytest.approx(1.0)
    assert np.isnan(image_auroc(torch.tensor([0.1, 0.2]), [0, 0]))


def test_the_mvtec_layout_is_read_and_bad_folders_are_named(tmp_path):
    root = write_defects(tmp_path / "d", "brick", train=4, test_good=2, test_defect=3, size=32)
    data = read_anomaly_folder(root)
    assert len(data.train) == 4 and sum(s.label for s in data.test) == 3 and data.has_masks
    (root / "train" / "scratch").mkdir()
    for i in range(2):
        (root / "train" / "scratch" / f"{i}.png").write_bytes((root / "train" / "good" / "000.png").read_bytes())
    with pytest.warns(UserWarning, match="2 in train/scratch/"):
        assert len(read_anomaly_folder(root).train) == 4  # left out, not learned as normal
    next((root / "ground_truth").rglob("*_mask.png")).unlink()
    with pytest.warns(UserWarning), pytest.raises(DataError, match="1 defective test images have no ground_truth"):
        read_anomaly_folder(root)
    with pytest.raises(DataError, match="train/good/"):
        read_anomaly_folder(tmp_path / "empty")


@pytest.mark.parametrize("method", ["patchcore", "padim"])
def test_a_fitted_model_reloads_to_the_same_scores_and_flags_nothing_it_held_out(tmp_path, method):
    torch.manual_seed(0)
    root = write_defects(tmp_path / "d", "gravel", train=10, test_good=3, test_defect=3, size=64)
    run = fit_anomaly(root, "resnet18", method, weights=None, image_size=64)
    assert set(run.metrics) >= {"image_auroc", "pixel_auroc"} and run.metrics["maps"].shape == (6, 64, 64)
    assert run.model.threshold is not None and run.model.threshold > 0
    run.model.save(tmp_path / "model.pt")
    loaded = load_anomaly_model(tmp_path / "model.pt")
    again = loaded.score(run.test)
    torch.testing.assert_close(again[0], run.metrics["scores"])
    torch.testing.assert_close(again[1], run.metrics["maps"])
    # the image score is the largest value of its smoothed heatmap (not of one raw patch)
    torch.testing.assert_close(run.metrics["scores"], run.metrics["maps"].flatten(1).amax(1))


@pytest.mark.parametrize(
    ("backbone", "strides", "indices"),
    # timm's stages: ResNet's and EfficientNet's start at stride 2, ConvNeXt's at stride 4
    [("resnet18", (4, 8), (1, 2)), ("efficientnet_lite0", (8, 16), (2, 3)), ("convnext_atto", (4, 8), (0, 1))],
)
def test_stages_are_picked_by_stride_whatever_the_architecture(backbone, strides, indices):
    from transferkit.anomaly.features import stage_indices

    assert stage_indices(backbone, strides) == indices


def test_a_stride_the_backbone_lacks_is_refused_with_the_strides_it_has(tmp_path):
    from transferkit.anomaly.features import stage_indices

    with pytest.raises(ConfigError, match=r"resnet18 has feature stages at strides \[2, 4, 8, 16, 32\], not \[3\]"):
        stage_indices("resnet18", (3,))


def test_chosen_strides_are_saved_with_the_model_and_used_again(tmp_path):
    root = write_defects(tmp_path / "d", "brick", train=5, test_good=1, test_defect=1, size=32)
    run = fit_anomaly(root, "resnet18", "patchcore", weights=None, image_size=32, strides=(8, 16))
    assert run.model.spec()["strides"] == [8, 16] and run.model.method.memory.shape[1] == 128 + 256
    run.model.save(tmp_path / "model.pt")
    assert load_anomaly_model(tmp_path / "model.pt").features.strides == (8, 16)
    assert PatchCore.strides == (4, 8) and PaDiM.strides == (4, 8, 16)  # the defaults when none are given


def test_a_model_saved_before_strides_were_recorded_loads_with_the_stages_it_was_fitted_on(tmp_path):
    """Such files read timm stages 2 and 3 (strides 8 and 16 on a ResNet) for PatchCore, not today's 4 and 8."""
    root = write_defects(tmp_path / "d", "brick", train=5, test_good=1, test_defect=1, size=32)
    run = fit_anomaly(root, "resnet18", "patchcore", weights=None, image_size=32, strides=(8, 16))
    run.model.save(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    del payload["spec"]["strides"]
    torch.save(payload, tmp_path / "old.pt")
    old = load_anomaly_model(tmp_path / "old.pt")
    assert old.features.strides == (8, 16)
    torch.testing.assert_close(old.score(run.test)[0], run.metrics["scores"])


def test_a_file_that_is_not_an_anomaly_model_is_refused(tmp_path):
    torch.save({"spec": {"task": "detect"}}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not a transferkit anomaly model"):
        load_anomaly_model(tmp_path / "other.pt")


def test_the_feature_stages_hold_the_backbones_weights_and_stay_frozen():
    from transferkit.backbones import create_backbone

    source = create_backbone("resnet18", weights=None)
    model = build_anomaly_model(source, "patchcore", image_size=32)
    body = model.features.body
    assert all(torch.equal(t, source.model.state_dict()[k]) for k, t in body.state_dict().items())
    assert not any(p.requires_grad for p in body.parameters()) and not model.features.train().body.training


@pytest.mark.parametrize("size, sigma, kernel", [(256, 4.0, 33), (512, 8.0, 65)])  # anomalib's σ 4 at 256 px
def test_heatmaps_are_smoothed_with_sigma_4_px_per_256_px_of_input(size, sigma, kernel):
    from torchvision.transforms.v2.functional import gaussian_blur

    model = build_anomaly_model(create_backbone_none(), "patchcore", image_size=size)
    scores = torch.zeros(1, size // 8, size // 8)
    scores[0, 5, 7] = 1.0
    upsampled = torch.nn.functional.interpolate(scores[:, None], size=[size, size], mode="bilinear")
    expected = gaussian_blur(upsampled, kernel_size=[kernel, kernel], sigma=[sigma, sigma])[:, 0]
    torch.testing.assert_close(model.heatmaps(scores), expected)


def create_backbone_none():
    from transferkit.backbones import create_backbone

    return create_backbone("resnet18", weights=None)


def test_aupro_by_hand_one_defect():
    """Normal pixels 0.1 0.2 0.3 0.4, a 2-pixel defect 0.9 and 0.35. Curve (FPR, PRO): (0, .5) to (.25, .5),
    up to (.25, 1), on to (.5, 1). Area up to FPR 0.3: .25 × .5 + .05 × 1 = .175; / .3 = 0.58333."""
    from transferkit.anomaly.metrics import aupro

    maps = torch.tensor([[[0.1, 0.2, 0.3], [0.4, 0.9, 0.35]]])
    masks = torch.tensor([[[0, 0, 0], [0, 1, 1]]])
    assert aupro(maps, masks) == pytest.approx(0.175 / 0.3)


def test_aupro_counts_each_defect_once_whatever_its_size():
    """Image 1: a 1-pixel defect A (0.9) and normals .05 .02 .01; image 2: a 3-pixel defect B (0.8, 0.1, 0.1)
    and a normal 0.5. Ranked: .9 A, .8 B, .5 N, .1 B, .1 B, then normals. A weighs 1/2, each pixel of B 1/6:
    (0, .667) to (.25, .667), up to (.25, 1): area .25 × .667 + .05 × 1 = .21667; / .3 = 0.72222.
    Weighting pixels instead of defects (A = 1/4, B = 3/4 of the total) would give another value."""
    from transferkit.anomaly.metrics import aupro

    maps = torch.tensor([[[0.9, 0.05, 0.02, 0.01]], [[0.8, 0.1, 0.1, 0.5]]])
    masks = torch.tensor([[[1, 0, 0, 0]], [[1, 1, 1, 0]]])
    assert aupro(maps, masks) == pytest.approx((0.25 * 2 / 3 + 0.05) / 0.3)
    assert np.isnan(aupro(maps, torch.zeros_like(masks)))


def test_a_reloaded_model_reads_new_images_with_the_fitted_ones_normalisation(tmp_path):
    """Pretrained weights may come with another normalisation than a random init of the same network
    (EfficientNet-Lite's ImageNet weights: mean = std = 0.5); ``anomaly evaluate`` and ``predict`` build
    their transform from the loaded model, so it must keep the fitted one's."""
    import dataclasses

    from transferkit.anomaly import AnomalyImages
    from transferkit.backbones import create_backbone

    source = create_backbone("resnet18", weights=None)
    source.data_config = dataclasses.replace(source.data_config, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    root = write_defects(tmp_path / "d", "gravel", train=6, test_good=2, test_defect=2, size=32)
    run = fit_anomaly(root, source, "patchcore", weights=None, image_size=32)
    run.model.save(tmp_path / "model.pt")
    loaded = load_anomaly_model(tmp_path / "model.pt")
    assert loaded.features.data_config.mean == (0.5, 0.5, 0.5) and loaded.features.data_config.std == (0.5,) * 3
    fresh = AnomalyImages(run.test.samples, loaded.features.data_config, loaded.image_size)  # as evaluate does
    torch.testing.assert_close(loaded.score(fresh)[0], run.metrics["scores"])
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    del payload["spec"]["normalize"]  # a file saved before the normalisation was recorded
    torch.save(payload, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="does not record its input normalisation"):
        load_anomaly_model(tmp_path / "old.pt")
