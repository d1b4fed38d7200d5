"""Interpretability: Grad-CAM, per-layer linear probes, linear CKA, t-SNE/UMAP feature maps."""

from transferkit.interpret.cka import cka_by_layer, linear_cka
from transferkit.interpret.embedding_plot import embed_2d, plot_embedding
from transferkit.interpret.gradcam import default_target_layer, grad_cam, overlay
from transferkit.interpret.probes import group_output_layers, probe_layers

__all__ = [
    "cka_by_layer",
    "default_target_layer",
    "embed_2d",
    "grad_cam",
    "group_output_layers",
    "linear_cka",
    "overlay",
    "plot_embedding",
    "probe_layers",
]
