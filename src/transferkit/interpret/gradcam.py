"""Grad-CAM (Selvaraju et al., ICCV 2017): where in the image the evidence for a class is.

``relu(Σ_k α_k A^k)`` with ``A`` a layer's activation maps and ``α_k`` the spatial mean of the
class score's gradient w.r.t. ``A^k``. The default layer is the deepest one that still has
spatial extent and that the class scores depend on (found by probing, no per-architecture table);
ViT token maps are reshaped to their patch grid.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from transferkit.errors import ConfigError


def _as_maps(out: Tensor) -> Tensor | None:
    """(N, C, H, W) maps from a conv output or a ViT token sequence (class/prefix tokens dropped)."""
    if out.ndim == 4 and out.shape[-1] > 1 and out.shape[-2] > 1:
        return out
    if out.ndim == 3:
        tokens = out.shape[1]
        side = int(math.isqrt(tokens))
        for prefix in range(0, 9):
            side = math.isqrt(tokens - prefix)
            if side > 1 and side * side == tokens - prefix:
                return out[:, prefix:].transpose(1, 2).reshape(out.shape[0], out.shape[2], side, side)
    return None


def default_target_layer(model: nn.Module, input_size: int) -> str:
    """Path of the deepest module whose output is a spatial map *and* reaches the class scores, found by running
    one probe image forward and backward (a multi-depth model runs its deepest layers without using them)."""
    param = next(model.parameters(), None)
    if param is None:
        raise ConfigError(
            "Grad-CAM explains a network's feature maps; this model has none (a classical baseline such as "
            "HOG or pixels + SVM). Explain one of the run's network candidates (RUN/candidates/NAME/best.pt)."
        )
    order: list[tuple[str, Tensor]] = []

    def keep(name: str, out: object) -> None:
        out = out[0] if isinstance(out, tuple) else out
        if isinstance(out, Tensor) and out.requires_grad and _as_maps(out) is not None:
            out.retain_grad()
            order.append((name, out))

    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    handles = [m.register_forward_hook(lambda _m, _i, out, name=n: keep(name, out)) for n, m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = torch.zeros(1, 3, input_size, input_size, device=param.device, dtype=param.dtype, requires_grad=True)
            model(x).float().sum().backward()
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    used = [name for name, out in order if out.grad is not None]  # leaves run in execution order
    if not used:
        raise ConfigError("Grad-CAM found no layer with spatial output that the class scores depend on; "
                          "pass target_layer=<module path>.")  # fmt: skip
    return used[-1]


def grad_cam(
    model: nn.Module, images: Tensor, target_class: Tensor | int | None = None, target_layer: str | None = None
) -> tuple[Tensor, Tensor]:
    """(heatmaps (N, H, W) in [0, 1] at the input resolution, the classes explained (N,)).

    Args:
        model: Maps images to class logits (e.g. a :class:`TransferModel`).
        images: (N, 3, H, W) normalised input.
        target_class: Class(es) to explain; default: the predicted class.
        target_layer: Module path inside ``model``; default :func:`default_target_layer`.
    """
    layer_name = target_layer or default_target_layer(model, images.shape[-1])
    try:
        layer = model.get_submodule(layer_name)
    except AttributeError:
        raise ConfigError(f"No module {layer_name!r} in the model for Grad-CAM.") from None
    captured: dict[str, Tensor] = {}

    def hook(_m, _i, out):
        out = out[0] if isinstance(out, tuple) else out
        out.retain_grad()
        captured["out"] = out

    handle = layer.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            # the input requires grad so that activations do even when every parameter is frozen
            logits = model(images.detach().clone().requires_grad_(True))
            classes = logits.argmax(1) if target_class is None else torch.as_tensor(target_class).expand(len(images))
            model.zero_grad(set_to_none=True)
            logits.gather(1, classes.view(-1, 1).to(logits.device)).sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)  # leave no gradients behind in the caller's model
        model.train(was_training)
    out = captured["out"]
    if out.grad is None:
        raise ConfigError(f"Layer {layer_name!r} gets no gradient from the class scores (the model does not use its "
                          "output); choose a layer on the path to the scores.")  # fmt: skip
    maps, grads = _as_maps(out.detach()), _as_maps(out.grad)
    if maps is None or grads is None:
        raise ConfigError(f"Layer {layer_name!r} has no spatial output ({tuple(out.shape)}); choose an earlier layer.")
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * maps).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)
    peak = cam.flatten(1).max(1).values.clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).cpu(), classes.cpu()


def overlay(image: Tensor, heatmap: Tensor, alpha: float = 0.45):
    """An (H, W, 3) uint8 array: the [0, 1] image with the heatmap in a jet colormap on top."""
    import numpy as np
    from matplotlib import colormaps

    rgb = image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    heat = colormaps["jet"](heatmap.cpu().numpy())[..., :3]
    return (255 * ((1 - alpha) * rgb + alpha * heat)).astype(np.uint8)
