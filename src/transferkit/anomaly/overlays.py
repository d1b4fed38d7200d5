"""Report overlays for anomaly detection: each test image beside its heatmap (blended) and its true defect."""

from __future__ import annotations

import numpy as np
from torch import Tensor


def heatmap_examples(model, dataset, scores: Tensor, maps: Tensor, count: int = 8) -> list[tuple[np.ndarray, str]]:
    """(S, 3S, 3) uint8 strips of the highest- and lowest-scoring test images: image | heatmap | truth."""
    from matplotlib import colormaps

    from transferkit.data.transforms import denormalize

    dc = model.features.data_config
    order = scores.argsort(descending=True).tolist()
    picked = order[: count // 2] + order[-(count - count // 2) :] if len(order) > count else order
    top = float(maps.max()) or 1.0
    shown = []
    for index in picked:
        image, label, mask = dataset[index]
        picture = (denormalize(image, dc.mean, dc.std).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        heat = (colormaps["inferno"](maps[index].numpy() / top)[..., :3] * 255).astype(np.uint8)
        blended = (0.5 * picture + 0.5 * heat).astype(np.uint8)
        truth = np.repeat((mask.numpy()[..., None] * 255).astype(np.uint8), 3, axis=2)
        kind = "defective" if label else "normal"
        caption = f"{dataset.samples[index].path.parent.name}/{dataset.samples[index].path.name} ({kind}): "
        shown.append((np.concatenate([picture, blended, truth], axis=1), caption + f"score {float(scores[index]):.3f}"))
    return shown
