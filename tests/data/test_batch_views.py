"""Batched views: each image's geometric operation equals torchvision's kernel on that image alone, each
colour operation runs torchvision's kernel on exactly the images that drew it, and the weak view is a crop
inside the image, mirrored for some."""

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from transferkit.data.batch_views import BatchViews, crop_matrices

BILINEAR = TF.InterpolationMode.BILINEAR


class Fixed(BatchViews):
    """No crop or flip; the operations given, one slot per entry of each image's list."""

    def __init__(self, ops, magnitudes, size=16):
        super().__init__(size, [0.0] * 3, [1.0] * 3, strong=True, num_ops=len(ops[0]))
        self.ops, self.magnitudes = ops, magnitudes

    def crop_flip(self, n, device):
        return torch.eye(3).repeat(n, 1, 1)

    def draw(self, n, device):
        names = [name for name, _, _ in self.space]
        return torch.tensor([[names.index(o) for o in row] for row in self.ops]), torch.tensor(self.magnitudes)


def _affine(x, translate=(0, 0), shear=(0.0, 0.0)):
    return TF.affine(x, 0.0, list(translate), 1.0, list(shear), interpolation=BILINEAR, center=[0, 0])


GEOMETRIC = [
    ("Rotate", 90.0, lambda x: TF.rotate(x, 90.0, interpolation=BILINEAR)),
    ("Rotate", -9.0, lambda x: TF.rotate(x, -9.0, interpolation=BILINEAR)),
    ("TranslateX", 5.6, lambda x: TF.affine(x, 0.0, [5, 0], 1.0, [0.0, 0.0], interpolation=BILINEAR)),
    ("TranslateY", -3.2, lambda x: TF.affine(x, 0.0, [0, -3], 1.0, [0.0, 0.0], interpolation=BILINEAR)),
    ("ShearX", 0.3, lambda x: _affine(x, shear=(math.degrees(math.atan(0.3)), 0.0))),
    ("ShearY", -0.09, lambda x: _affine(x, shear=(0.0, math.degrees(math.atan(-0.09))))),
]


@pytest.mark.parametrize("op, magnitude, reference", GEOMETRIC, ids=[f"{o}{m}" for o, m, _ in GEOMETRIC])
def test_a_geometric_operation_is_torchvisions_on_that_image(op, magnitude, reference):
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    got = Fixed([[op]], [[magnitude]])(x)
    assert torch.allclose(got, reference(x), atol=1e-5)


def test_two_operations_apply_in_their_slots_order():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    got = Fixed([["Rotate", "TranslateX"]], [[90.0, 4.0]])(x)
    want = TF.affine(TF.rotate(x, 90.0, interpolation=BILINEAR), 0.0, [4, 0], 1.0, [0.0, 0.0], interpolation=BILINEAR)
    assert torch.allclose(got, want, atol=1e-5)


def test_each_colour_operation_runs_on_the_images_that_drew_it_and_only_those():
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    ops = [["Brightness"], ["Brightness"], ["Equalize"], ["Identity"], ["Posterize"], ["Solarize"]]
    magnitudes = [[0.27], [-0.27], [0.0], [0.0], [7.0], [0.7]]
    got = Fixed(ops, magnitudes)(x)
    want = [
        TF.adjust_brightness(x[0], 1.27),
        TF.adjust_brightness(x[1], 0.73),
        TF.equalize(x[2]),
        x[3],
        TF.posterize(x[4], 7),
        TF.solarize(x[5], 0.7),
    ]
    for i, expected in enumerate(want):
        assert torch.allclose(got[i], expected, atol=1e-6), ops[i]


def test_the_magnitudes_are_torchvisions_randaugment_defaults():
    space = {name: (m, signed) for name, m, signed in BatchViews(96, [0] * 3, [1] * 3, True).space}
    assert len(space) == 14
    assert space["Rotate"] == (pytest.approx(9.0), True)  # 30° × 9/30
    assert space["TranslateX"][0] == pytest.approx(150 / 331 * 96 * 9 / 30)
    assert space["Posterize"] == (7, False) and space["Solarize"] == (pytest.approx(0.7), False)


def test_the_weak_view_of_a_whole_image_crop_is_the_image_or_its_mirror():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 16, 16)
    views = BatchViews(16, [0.5] * 3, [0.25] * 3, strong=False, scale=(1.0, 1.0), ratio=(1.0, 1.0))(x)
    plain = (views * 0.25 + 0.5 - x).abs().flatten(1).amax(1) < 1e-5
    mirrored = (views * 0.25 + 0.5 - x.flip(-1)).abs().flatten(1).amax(1) < 1e-5
    assert bool((plain | mirrored).all()) and plain.any() and mirrored.any()


def test_crops_have_the_drawn_area_and_stay_inside_the_image():
    torch.manual_seed(0)
    theta = crop_matrices(500, (0.25, 0.25), (1.0, 1.0), "cpu")
    assert torch.allclose(theta[:, 0, 0], torch.full((500,), 0.5)) and torch.allclose(theta[:, 1, 1], theta[:, 0, 0])
    assert bool((theta[:, :, 2].abs() <= 0.5 + 1e-6).all())  # centre within ±(1 − half-side·2)
    theta = crop_matrices(500, (0.7, 1.0), (3 / 4, 4 / 3), "cpu")
    area = theta[:, 0, 0] * theta[:, 1, 1]
    assert bool(((area >= 0.7 - 1e-6) & (area <= 1.0 + 1e-6)).all())
    assert bool(((theta[:, 0, 0] <= 1) & (theta[:, 1, 1] <= 1)).all())


def test_images_of_another_size_are_refused_with_the_fix():
    with pytest.raises(Exception, match=r"got \(20, 16\) images: resize them first"):
        BatchViews(16, [0] * 3, [1] * 3, strong=False)(torch.rand(2, 3, 20, 16))


def test_a_gray_plane_kept_once_gives_the_views_of_its_three_channel_copy():
    plane = (torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)
    views = BatchViews(16, [0.5] * 3, [0.5] * 3, strong=True)
    torch.manual_seed(0)
    once = views(plane)
    torch.manual_seed(0)
    assert torch.equal(once, views(plane.expand(-1, 3, -1, -1)))
