"""2-D map of features (t-SNE from scikit-learn; UMAP when ``umap-learn`` is installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transferkit.errors import ConfigError


def embed_2d(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ConfigError("UMAP needs umap-learn: pip install umap-learn, or use method='tsne'.") from None
        return umap.UMAP(random_state=seed).fit_transform(features)
    if method != "tsne":
        raise ConfigError(f"method must be tsne or umap, got {method!r}.")
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def plot_embedding(
    features: np.ndarray, labels: np.ndarray, classes: list[str], path: str | Path, method: str = "tsne"
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = embed_2d(np.asarray(features, dtype=np.float32), method)
    fig, ax = plt.subplots(figsize=(6, 5))
    for k, name in enumerate(classes):
        mask = labels == k
        ax.scatter(points[mask, 0], points[mask, 1], s=8, label=name)
    ax.set_title(f"{method} of features")
    ax.legend(markerscale=2, fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
