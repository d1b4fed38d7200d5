"""Augmentation presets built on ``torchvision.transforms.v2``, applied to float (3, H, W) images.

Presets:
    none: resize + normalise.
    light: random resized crop (70–100 %) + horizontal flip.
    strong: random resized crop (25–100 %) + flip + TrivialAugment + random erasing.
    microscopy: flips, 90° rotations, mild brightness/contrast; no scale change
        (orientation carries no label, magnification does). Normalise with the dataset's
        own mean/std by default.
``auto_augment`` adds RandAugment or TrivialAugment to any preset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torchvision.transforms.v2 as T
from torch import Tensor, nn

from transferkit.errors import ConfigError

PRESETS = ("none", "light", "strong", "microscopy")
AutoAugment = Literal["none", "randaugment", "trivialaugment"]


class RandomRot90(nn.Module):
    """Rotate by k·90°, k uniform in {0, 1, 2, 3}: the symmetry group of a microscope field."""

    def forward(self, image: Tensor) -> Tensor:
        k = int(torch.randint(4, ()).item())
        return torch.rot90(image, k, dims=(-2, -1)) if k else image


def _shared_plane(image: Tensor) -> bool:
    """Whether ``image`` (…, 3, H, W) is one gray plane shown as three channels (``expand``: stride 0)."""
    return type(image) is Tensor and image.ndim >= 3 and image.shape[-3] == 3 and image.stride(-3) == 0


class SharedChannels(nn.Module):
    """Run ``inner`` once on a grayscale image (or batch) shown as three channels of one plane and show
    the result the same way: a third of the work, the same output. Other images go through ``inner``
    unchanged. Geometric transforms draw their parameters from the size only, so the random state
    advances exactly as on three channels."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, image: Tensor) -> Tensor:
        if _shared_plane(image):
            out = self.inner(image[..., :1, :, :])
            return out.expand(*out.shape[:-3], 3, *out.shape[-2:])
        return self.inner(image)


class PolicyAtSmallerSize(nn.Module):
    """``resize`` then ``policy`` — or, for an image with fewer pixels than the output, ``policy`` then
    ``resize``: an augmentation policy (RandAugment's rotations, shears, colour operations) then runs on
    the fewer pixels. A 28-pixel scan upscaled to 96 pixels is augmented at 28 (measured: a strong view
    0.93 → 0.73 ms on one core; the policy's own cost is mostly per call, not per pixel). Both orders are
    the same augmentations up to resampling."""

    def __init__(self, resize: nn.Module, policy: nn.Module, size: int) -> None:
        super().__init__()
        self.resize, self.policy, self.pixels = resize, SharedChannels(policy), size * size

    def forward(self, image: Tensor) -> Tensor:
        if image.shape[-2] * image.shape[-1] < self.pixels:
            return self.resize(self.policy(image))
        return self.policy(self.resize(image))


def transform_batch(transform: nn.Module, images: list[Tensor]) -> Tensor:
    """``torch.stack([transform(x) for x in images])`` for a deterministic (evaluation) transform, with one
    call per distinct image size instead of one per image (torchvision's kernels take batches): what a
    server or a predictor does with a list of decoded images. Gray planes stay shared until normalised."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault((*image.shape, _shared_plane(image)), []).append(i)
    out: Tensor | None = None
    for key, members in groups.items():
        if key[-1]:  # gray: stack the planes, show them as three channels
            batch = torch.stack([images[i][:1] for i in members]).expand(-1, 3, -1, -1)
        else:
            batch = torch.stack([images[i] for i in members])
        result = transform(batch)
        if out is None:
            out = result.new_empty((len(images), *result.shape[1:]))
        out[members] = result
    if out is None:
        raise ValueError("transform_batch needs at least one image")
    return out


def _interp(name: str) -> T.InterpolationMode:
    return T.InterpolationMode(name) if name in {m.value for m in T.InterpolationMode} else T.InterpolationMode.BILINEAR


def _resize(size: int, interp: T.InterpolationMode) -> nn.Module:
    """Resize to ``size`` × ``size`` (a gray plane shown as three channels: once)."""
    return SharedChannels(T.Resize((size, size), interpolation=interp, antialias=True))


def build_transforms(
    preset: str,
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    auto_augment: AutoAugment = "none",
    interpolation: str = "bilinear",
) -> T.Compose:
    """Training (``train=True``) or evaluation transform of a preset."""
    if preset not in PRESETS:
        raise ConfigError(f"No augmentation preset {preset!r}. Available: {', '.join(PRESETS)}.")
    interp = _interp(interpolation)
    # torchvision's augmentation policies rotate/shear tensors with nearest or bilinear sampling only
    policy = interp if interp in (T.InterpolationMode.NEAREST, T.InterpolationMode.BILINEAR) else _interp("bilinear")
    resize = [_resize(size, interp)]
    if not train or preset == "none":
        steps: list[nn.Module] = list(resize)
    elif preset == "light":
        steps = [
            SharedChannels(T.RandomResizedCrop(size, scale=(0.7, 1.0), interpolation=interp, antialias=True)),
            T.RandomHorizontalFlip(),
        ]
    elif preset == "strong":
        steps = [
            SharedChannels(T.RandomResizedCrop(size, scale=(0.25, 1.0), interpolation=interp, antialias=True)),
            T.RandomHorizontalFlip(),
            T.TrivialAugmentWide(interpolation=policy),
        ]
    else:  # microscopy
        steps = [
            *resize,
            T.RandomHorizontalFlip(),
            T.RandomVerticalFlip(),
            RandomRot90(),
            T.ColorJitter(brightness=0.1, contrast=0.1),
        ]
    policies = {"randaugment": T.RandAugment, "trivialaugment": T.TrivialAugmentWide}
    if auto_augment not in ("none", *policies):
        raise ConfigError(f"auto_augment must be none, randaugment or trivialaugment, got {auto_augment!r}.")
    if train and auto_augment in policies:  # next to the step that sets the size: at the smaller of the two
        steps[0] = PolicyAtSmallerSize(steps[0], policies[auto_augment](interpolation=policy), size)
    steps.append(T.Normalize(list(mean), list(std)))
    if train and preset == "strong":
        steps.append(T.RandomErasing(p=0.25))
    return T.Compose(steps)


class ToUint8(nn.Module):
    """A [0, 1] float image as uint8 (a quarter of the bytes to collate and copy to the device)."""

    def forward(self, image: Tensor) -> Tensor:
        return image.clamp(0, 1).mul(255).round().to(torch.uint8)


def resized_uint8(size: int, interpolation: str = "bilinear") -> T.Compose:
    """A raw image resized to ``size`` × ``size``, as uint8: what a loader gives views made on the device."""
    return T.Compose([_resize(size, _interp(interpolation)), ToUint8()])


def denormalize(image: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """Undo :class:`Normalize` on a (3, H, W) input for display: float in [0, 1], on the CPU."""
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    return (image.float().cpu() * s + m).clamp(0, 1)


TTA_MODES = ("none", "flip", "dihedral")


def eval_transform(data_config: Any, size: int | None = None) -> T.Compose:
    """The evaluation transform a backbone's data config asks for (resize to ``size`` or its input size,
    its normalisation and resize filter): what prediction, export checks, serving and feature extraction use."""
    dc = data_config
    return build_transforms("none", size or dc.input_size, dc.mean, dc.std, train=False, interpolation=dc.interpolation)


def tta_views(images: Tensor, mode: str) -> list[Tensor]:
    """Test-time views of a batch (N, C, H, W): ``flip`` adds the mirror image; ``dihedral`` the 8 flips
    and 90° rotations (for images whose orientation carries no label, e.g. micrographs)."""
    if mode == "none":
        return [images]
    if mode == "flip":
        return [images, images.flip(-1)]
    if mode == "dihedral":
        rotations = [torch.rot90(images, k, dims=(-2, -1)) for k in range(4)]
        return rotations + [r.flip(-1) for r in rotations]
    raise ConfigError(f"tta must be one of {', '.join(TTA_MODES)}, got {mode!r}.")
