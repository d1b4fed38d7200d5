"""How long a recipe will take here, from a few timed batches on this machine.

``auto`` measures, once per backbone and input size, the seconds per image of a frozen
forward pass (how features and cached outputs are computed) and of a training step
(forward + backward in the training precision), on a small random batch after one warm-up.
A recipe's estimate is the sum of its image passes times those rates; recipes that would
overrun the remaining budget are skipped or run at a smaller input size, and say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from transferkit.backbones import ModelBackbone
from transferkit.engine.config import TrainConfig, autocast_for, frozen_autocast_dtype, resolve_precision
from transferkit.engine.model import device_of

PROBE_BATCH = 16
RECIPE_OVERHEAD = 2.0  # seconds: model copy, optimizer and loader set-up, final evaluation
EPOCH_OVERHEAD = 0.5  # seconds per epoch: stage bookkeeping, checkpoints, loader start
HOG_SECONDS_PER_IMAGE = 0.002  # scikit-image HOG at 64 px on one core, measured
SVM_SECONDS_PER_MILLION_PAIRS = 6.0  # RBF SVC with C search and calibration: ~O(n²) in training images


def _timed(run: Callable[[], object], repeats: int = 1) -> float:
    run()  # warm-up: allocations, kernel selection
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - started) / repeats


SIZES = (96, 224)  # each pass is timed at these sizes; cost(size) = a + b·size² through the two points


def _interpolate(measured: dict[int, float], size: int) -> float:
    """Per-image seconds at ``size`` from the two measured sizes (a fixed part plus a part ∝ pixels)."""
    (s0, t0), (s1, t1) = sorted(measured.items())
    slope = max((t1 - t0) / (s1 * s1 - s0 * s0), 0.0)
    return max(t0 + slope * (size * size - s0 * s0), t0 * 0.25)


@dataclass
class CostProbe:
    """Seconds per image of frozen forward passes and training steps of ``backbone``, by input size.

    Each kind of pass is timed at 96 and 224 px; other sizes are interpolated (:func:`_interpolate`).
    """

    backbone: ModelBackbone
    config: TrainConfig
    _forward: dict[int, float] = field(default_factory=dict)
    _train: dict[tuple[int, int], float] = field(default_factory=dict)
    _load: dict[int, float] = field(default_factory=dict)

    def _images(self, size: int) -> torch.Tensor:
        x = torch.rand(PROBE_BATCH, 3, size, size, generator=torch.Generator().manual_seed(0))
        return x.to(device_of(self.backbone)).contiguous(memory_format=torch.channels_last)

    def forward(self, size: int) -> float:
        """Seconds per image of the frozen backbone (``inference_mode``, the feature cache's autocast)."""
        if size not in SIZES:
            return _interpolate({s: self.forward(s) for s in SIZES}, size)
        if size not in self._forward:
            device = device_of(self.backbone)
            dtype = frozen_autocast_dtype(self.config.precision, device)
            x = self._images(size)
            was = self.backbone.training
            self.backbone.eval()

            def run() -> None:
                with torch.inference_mode(), autocast_for(device, dtype):
                    self.backbone.forward_features(x)

            try:
                self._forward[size] = _timed(run) / PROBE_BATCH
            finally:
                self.backbone.train(was)
        return self._forward[size]

    def train(self, size: int, groups: int = -1) -> float:
        """Seconds per image of a training step with the deepest ``groups`` layer groups trainable (-1: all).

        The step runs the whole network (a frozen bottom is then cached by the engine, so for
        ``groups`` ≥ 0 the frozen part's share is subtracted using the forward rate).
        """
        if size not in SIZES:
            return _interpolate({s: self.train(s, groups) for s in SIZES}, size)
        key = (size, groups)
        if key not in self._train:
            self._train[key] = self._measure_train(size, groups)
        return self._train[key]

    def _measure_train(self, size: int, groups: int) -> float:
        net = self.backbone
        layer_groups = net.layer_groups()
        split = net.split(len(layer_groups) - groups) if 0 < groups < len(layer_groups) else None
        x = self._images(size)
        device = device_of(net)
        precision = resolve_precision(self.config.precision, self.config.accelerator)
        dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
        if split is not None:
            with torch.no_grad():
                x = split.bottom.eval()(x)
        step_net: nn.Module = split.top if split is not None else net
        params = [p for p in step_net.parameters()]
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(True)
        was = net.training
        net.eval()  # eval mode: timing a step must not move BatchNorm statistics of the pretrained net

        def run() -> None:
            with autocast_for(device, dtype):
                out = step_net(x) if split is not None else net.forward_features(x)
            out.float().sum().backward()
            for p in params:
                p.grad = None

        try:
            return _timed(run) / PROBE_BATCH
        finally:
            net.train(was)
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)

    def load(self, dataset, size: int) -> float:
        """Seconds per image to decode and augment a training image at ``size`` (timed on a few images)."""
        if size not in self._load:
            count = min(len(dataset), PROBE_BATCH)
            started = time.perf_counter()
            for i in range(count):
                dataset[i]
            self._load[size] = (time.perf_counter() - started) / max(count, 1)
        return self._load[size]


def svm_seconds(train_images: int) -> float:
    """Rough time of the RBF-SVM baselines (C search + calibration) on ``train_images`` images."""
    return 2.0 + SVM_SECONDS_PER_MILLION_PAIRS * (train_images / 1000) ** 2
