"""Augmented views of a whole batch at once, on the batch's device: every image its own random crop, flip
and RandAugment operations.

FixMatch needs 15 views per labelled image a step. Made one by one in loader workers they cost ~0.7 ms
each on a CPU core (a strong view at 96 px), so a GPU machine with few cores waits for them (measured:
~210 images/s per run on an H200 that showed 2 cores). Here the loader only resizes, and the views are
made where the model runs:

* the geometry — ``light``'s random resized crop (70–100 % of the area, aspect 3/4–4/3), the flip, and
  RandAugment's shears, translations and rotations — is one affine matrix per image and one
  ``grid_sample`` for the batch;
* the colour operations are torchvision's own kernels (``torchvision.transforms.v2.functional``), run
  once per (operation, sign) on the images that drew it.

The operations and magnitudes are torchvision's ``RandAugment``'s (its defaults: 2 operations, magnitude 9
of 31 bins, random signs), read from it. Two differences: each image draws its own operations (as it does
in a loader, one call per image), and the geometric ones are applied before the colour ones (one resampling
instead of up to three).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.errors import ConfigError

GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
COLOUR: dict[str, Callable[[Tensor, float], Tensor]] = {
    "Brightness": lambda x, m: TF.adjust_brightness(x, 1.0 + m),
    "Color": lambda x, m: TF.adjust_saturation(x, 1.0 + m),
    "Contrast": lambda x, m: TF.adjust_contrast(x, 1.0 + m),
    "Sharpness": lambda x, m: TF.adjust_sharpness(x, 1.0 + m),
    "Posterize": lambda x, m: TF.posterize(x, int(m)),
    "Solarize": lambda x, m: TF.solarize(x, m),  # images in [0, 1]: the threshold is the magnitude
    "AutoContrast": lambda x, m: TF.autocontrast(x),
    "Equalize": lambda x, m: TF.equalize(x),
}


def randaugment_space(size: int, magnitude: int = 9, bins: int = 31) -> list[tuple[str, float, bool]]:
    """(operation, magnitude, signed) of each of torchvision's RandAugment operations on ``size``-pixel images."""
    space = T.RandAugment._AUGMENTATION_SPACE  # noqa: SLF001  (the table RandAugment draws from)
    out = []
    for name, (magnitudes, signed) in space.items():
        values = magnitudes(bins, size, size)
        out.append((name, 0.0 if values is None else float(values[magnitude]), bool(signed)))
    return out


def crop_matrices(n: int, scale: Sequence[float], ratio: Sequence[float], device, tries: int = 10) -> Tensor:
    """(n, 2, 3) affine matrices (output → input, normalised coordinates) of random resized crops.

    As torchvision's ``RandomResizedCrop``: area fraction ~ U(scale), log aspect ~ U(log ratio), up to ``tries``
    draws until the crop fits, else the whole image; the position is uniform where the crop fits.
    """
    width = height = torch.ones(n, device=device)
    found = torch.zeros(n, dtype=torch.bool, device=device)
    for _ in range(tries):
        area = torch.empty(n, device=device).uniform_(*scale)
        aspect = torch.exp(torch.empty(n, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1])))
        w, h = torch.sqrt(area * aspect), torch.sqrt(area / aspect)
        take = ~found & (w <= 1) & (h <= 1)
        width, height = torch.where(take, w, width), torch.where(take, h, height)
        found |= take
    cx = (torch.rand(n, device=device) * 2 - 1) * (1 - width)
    cy = (torch.rand(n, device=device) * 2 - 1) * (1 - height)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = width, height, cx, cy
    return theta


def _geometric_matrix(name: str, m: Tensor, size: int) -> Tensor:
    """(k, 3, 3) output → input matrices of one RandAugment operation with magnitudes ``m`` (signed)."""
    k = len(m)
    out = torch.eye(3, device=m.device).repeat(k, 1, 1)
    if name in ("ShearX", "ShearY"):  # about the top-left corner, as torchvision's (center=[0, 0])
        along, across = (0, 1) if name == "ShearX" else (1, 0)
        out[:, along, across], out[:, along, 2] = m, m
    elif name in ("TranslateX", "TranslateY"):  # whole pixels, as torchvision's int(magnitude)
        out[:, 0 if name == "TranslateX" else 1, 2] = -2 * torch.trunc(m) / size  # the image moves by +m
    else:  # Rotate, about the centre, degrees
        radians = torch.deg2rad(m)
        out[:, 0, 0], out[:, 0, 1] = torch.cos(radians), -torch.sin(radians)
        out[:, 1, 0], out[:, 1, 1] = torch.sin(radians), torch.cos(radians)
    return out


class BatchViews(nn.Module):
    """uint8 or [0, 1] float images (N, 1 or 3, S, S) → normalised views: crop and flip (weak), plus RandAugment
    (``strong``). Random draws come from the device's global generator (seeded per epoch by the trainer)."""

    def __init__(
        self,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        strong: bool,
        scale: Sequence[float] = (0.7, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        num_ops: int = 2,
    ) -> None:
        super().__init__()
        self.size, self.strong, self.scale, self.ratio, self.num_ops = size, strong, scale, ratio, num_ops
        self.space = randaugment_space(size)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def crop_flip(self, n: int, device) -> Tensor:
        """(n, 3, 3) output → input matrices: a random resized crop, mirrored for half the images."""
        theta = torch.eye(3, device=device).repeat(n, 1, 1)
        theta[:, :2] = crop_matrices(n, self.scale, self.ratio, device)
        theta[:, :2, 0] *= torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)[:, None]
        return theta

    def draw(self, n: int, device) -> tuple[Tensor, Tensor]:
        """(n, num_ops) operation indices into ``space`` and their signed magnitudes."""
        ops = torch.randint(len(self.space), (n, self.num_ops), device=device)
        magnitude = torch.tensor([m for _, m, _ in self.space], device=device)[ops]
        signed = torch.tensor([s for _, _, s in self.space], device=device)[ops]
        flip = signed & (torch.rand(n, self.num_ops, device=device) <= 0.5)
        return ops, torch.where(flip, -magnitude, magnitude)

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-1] != self.size or images.shape[-2] != self.size:
            raise ConfigError(f"BatchViews({self.size}) got {tuple(images.shape[-2:])} images: resize them first.")
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x  # a gray plane kept once (data/resized.py)
        n, device = len(x), x.device
        theta = self.crop_flip(n, device)
        ops, magnitudes = self.draw(n, device) if self.strong else (None, None)
        if ops is not None:
            theta = self._compose(theta, ops, magnitudes)
        grid = F.affine_grid(theta[:, :2], list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if ops is not None:
            x = self._colour(x.clamp(0, 1), ops, magnitudes)
        return (x - self.mean) / self.std

    def _compose(self, theta: Tensor, ops: Tensor, magnitudes: Tensor) -> Tensor:
        """``theta`` followed (in the image's order) by each slot's geometric operation."""
        for slot in range(ops.shape[1]):
            step = torch.eye(3, device=theta.device).repeat(len(theta), 1, 1)
            for index, (name, _, _) in enumerate(self.space):
                chosen = ops[:, slot] == index
                if name in GEOMETRIC and chosen.any():
                    step[chosen] = _geometric_matrix(name, magnitudes[chosen, slot], self.size)
            theta = theta @ step
        return theta

    def _colour(self, x: Tensor, ops: Tensor, magnitudes: Tensor) -> Tensor:
        """Each slot's colour operation, run by torchvision once per (operation, magnitude) on its images."""
        for slot in range(ops.shape[1]):
            for index, (name, _, _) in enumerate(self.space):
                chosen = ops[:, slot] == index
                if name not in COLOUR or not chosen.any():
                    continue
                for value in magnitudes[chosen, slot].unique().tolist():
                    rows = (chosen & (magnitudes[:, slot] == value)).nonzero().squeeze(1)
                    x[rows] = COLOUR[name](x[rows], value)
        return x
