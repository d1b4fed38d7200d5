"""CLIP zero-shot (Radford et al., ICML 2021) through open_clip, with weights the user has.

Nothing is downloaded: ``weights`` must be a local file (e.g. the ``open_clip_pytorch_model.bin``
of ``ViT-B-32`` laion2b). Classes are scored by cosine similarity between the image embedding
and the mean embedding of prompts such as "a photo of a {class}."
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from transferkit.errors import ConfigError, WeightsNotFoundError

DEFAULT_TEMPLATES = ("a photo of a {}.", "a close-up photo of a {}.", "an image of a {}.")


class ClipZeroShot:
    """Zero-shot classifier over ``classes`` from an open_clip model and local weights."""

    def __init__(
        self,
        classes: Sequence[str],
        arch: str = "ViT-B-32",
        weights: str | Path | None = None,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        device: str = "cpu",
    ) -> None:
        try:
            import open_clip
        except ImportError:
            raise ConfigError(
                "CLIP zero-shot needs open_clip: pip install 'transferkit[clip]' (open_clip_torch)."
            ) from None
        if weights is None or not Path(weights).is_file():
            raise WeightsNotFoundError(
                f"CLIP weights for {arch} not found ({weights!r}). This machine does not download models: "
                f"copy a weights file (e.g. open_clip_pytorch_model.bin for {arch}) here and pass its path."
            )
        if arch not in open_clip.list_models():
            raise ConfigError(f"Unknown CLIP architecture {arch!r}; open_clip knows e.g. ViT-B-32, ViT-B-16, RN50.")
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=str(weights), weights_only=True
        )
        self.model.eval().to(device)
        self.device = device
        tokenizer = open_clip.get_tokenizer(arch)
        with torch.no_grad():
            rows = []
            for name in classes:
                text = tokenizer([t.format(name.replace("_", " ")) for t in templates]).to(device)
                emb = self.model.encode_text(text)
                emb = emb / emb.norm(dim=-1, keepdim=True)
                rows.append(emb.mean(0))
            self.text = torch.stack(rows)
            self.text = self.text / self.text.norm(dim=-1, keepdim=True)
        self.classes = list(classes)

    def logits(self, images: Tensor) -> Tensor:
        """``images`` already preprocessed with ``self.preprocess``."""
        with torch.no_grad():
            emb = self.model.encode_image(images.to(self.device))
            emb = emb / emb.norm(dim=-1, keepdim=True)
            return 100.0 * emb @ self.text.T

    def predict_files(self, paths: Sequence[str | Path], batch_size: int = 32) -> Tensor:
        """Class indices for image files (decoded by transferkit's loader: 16-bit, TIFF, bombs refused)."""
        from torchvision.transforms.functional import to_pil_image

        from transferkit.data.images import load_image

        out = []
        for start in range(0, len(paths), batch_size):
            batch = [self.preprocess(to_pil_image(load_image(p))) for p in paths[start : start + batch_size]]
            out.append(self.logits(torch.stack(batch)).argmax(1).cpu())
        return torch.cat(out)
