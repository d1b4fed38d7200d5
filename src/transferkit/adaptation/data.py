"""Target-domain images for adaptation: labelled (class sub-folders, labels only for reporting)
or unlabelled (a flat folder of images)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from transferkit.data import ImageFileDataset, build_transforms, verify_images
from transferkit.data.folders import scan_class_folders
from transferkit.errors import DataError


def load_target(
    folder: str | Path, classes: list[str], input_size: int, mean, std, interpolation: str = "bilinear"
) -> tuple[Dataset, bool]:
    """(dataset with the eval transform, whether it has labels). Unlabelled images get label -1."""
    from transferkit.inference import list_images

    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"Target folder {str(folder)!r} does not exist.")
    transform = build_transforms("none", input_size, mean, std, train=False, interpolation=interpolation)
    sub = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
    if sub:
        _, samples = scan_class_folders(folder, classes)  # labels index the source classes; unknown ones fail
        return ImageFileDataset(verify_images(samples), transform), True
    samples = [(path, -1) for path in list_images([folder])]
    return ImageFileDataset(verify_images(samples), transform), False
