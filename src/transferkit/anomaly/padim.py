"""PaDiM (Defard et al., ICPR 2021): a Gaussian per patch position over normal embeddings; a patch's score
is its Mahalanobis distance to its position's Gaussian.

As the paper and anomalib: the stages at strides 4, 8 and 16 upsampled to the first and concatenated, a
fixed random subset of ``features`` channels, covariance regularised by 0.01·I, no neighbourhood
averaging. Needs images of one size and framing (positions must correspond), as the method assumes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from transferkit.anomaly.base import ANOMALY_METHODS, AnomalyMethod


@ANOMALY_METHODS.register("padim")
class PaDiM(AnomalyMethod):
    name = "padim"
    strides = (4, 8, 16)
    smooth = False

    def __init__(self, features: int = 100, seed: int = 0) -> None:
        self.features, self.seed = features, seed
        self.channels = self.mean = self.precision = torch.empty(0)

    def fit(self, embeddings: Tensor) -> None:
        n, c, h, w = embeddings.shape
        if n < 2:
            raise ValueError("PaDiM needs at least two normal images to estimate a covariance.")
        generator = torch.Generator().manual_seed(self.seed)
        self.channels = torch.randperm(c, generator=generator)[: min(self.features, c)].sort().values
        x = embeddings[:, self.channels].permute(2, 3, 0, 1).reshape(h * w, n, -1).double()  # (positions, n, d)
        self.mean = x.mean(dim=1)
        centred = x - self.mean[:, None]
        covariance = centred.transpose(1, 2) @ centred / (n - 1) + 0.01 * torch.eye(x.shape[-1], dtype=x.dtype)
        self.precision = torch.linalg.inv(covariance).float()
        self.mean = self.mean.float().reshape(h, w, -1)

    def patch_scores(self, embeddings: Tensor) -> Tensor:
        n, _, h, w = embeddings.shape
        if (h, w) != tuple(self.mean.shape[:2]):
            raise ValueError(f"PaDiM was fitted on {tuple(self.mean.shape[:2])} patch grids, got {(h, w)}.")
        delta = (embeddings[:, self.channels].permute(0, 2, 3, 1) - self.mean).reshape(n, h * w, 1, -1)
        squared = (delta @ self.precision @ delta.transpose(-1, -2)).reshape(n, h, w)
        return squared.clamp_min(0).sqrt()

    def state(self) -> dict[str, Tensor]:
        return {"channels": self.channels, "mean": self.mean, "precision": self.precision}

    def load_state(self, state: dict[str, Tensor]) -> None:
        self.channels, self.mean, self.precision = state["channels"], state["mean"], state["precision"]
