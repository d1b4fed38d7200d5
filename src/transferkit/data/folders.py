"""Find labelled images on disk: a train/ + val/ layout, one folder to split, or a CSV.

Everything here works on ``(path, label)`` lists; nothing decodes images.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.model_selection import train_test_split

from transferkit.data.images import IMAGE_SUFFIXES
from transferkit.errors import ConfigError, DataError

Sample = tuple[Path, int]


@dataclass(frozen=True)
class Splits:
    """Labelled samples of each split and the class names (index = label)."""

    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    test: list[Sample] = field(default_factory=list)

    def counts(self, split: str = "train") -> list[int]:
        counts = [0] * len(self.classes)
        for _, label in getattr(self, split):
            counts[label] += 1
        return counts


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def scan_class_folders(root: Path, classes: list[str] | None = None) -> tuple[list[str], list[Sample]]:
    """``root/<class>/**/image`` → class names and samples.

    Args:
        root: Folder with one sub-folder per class.
        classes: Class names fixed by another split (train); then folders outside this list are an error.
    """
    if not root.is_dir():
        raise DataError(f"{str(root)!r} is not a folder. Expected one sub-folder per class with images inside.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{str(root)!r} has no class sub-folders. Expected {root}/<class>/<image files>.")
    empty = [f.name for f in folders if not _images_in(f)]
    if empty:
        raise DataError(
            f"Class folder(s) {empty} in {str(root)!r} contain no images ({', '.join(sorted(IMAGE_SUFFIXES))}). "
            "Add images or remove the folder."
        )
    names = [f.name for f in folders]
    if classes is None:
        classes = names
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise DataError(
            f"{str(root)!r} has classes not present in the training data: {unknown}. Training classes: "
            f"{classes}. Rename or remove those folders, or add training images for them."
        )
    index = {c: i for i, c in enumerate(classes)}
    samples = [(path, index[f.name]) for f in folders for path in _images_in(f)]
    return classes, samples


SPLITS = ("train", "val", "test")


def read_csv(path: Path) -> tuple[list[str], list[Sample], list[str]]:
    """A CSV with columns ``path,label[,split]`` (header optional); paths relative to the CSV's folder.

    Returns class names, samples, and each row's split (``train``/``val``/``test``, or ``""``).
    """
    rows: list[tuple[str, str, str]] = []
    with open(path, newline="") as handle:
        for lineno, row in enumerate(csv.reader(handle), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise DataError(f"{path}:{lineno}: expected 'path,label[,split]', got {row!r}.")
            if lineno == 1 and row[0].strip().lower() in {"path", "file", "filename", "image"}:
                continue
            split = row[2].strip().lower() if len(row) > 2 else ""
            split = "val" if split in ("valid", "validation") else split
            if split not in ("", *SPLITS):
                raise DataError(f"{path}:{lineno}: split must be train, val or test, got {row[2]!r}.")
            rows.append((row[0].strip(), row[1].strip(), split))
    if not rows:
        raise DataError(f"{path} lists no images.")
    classes = sorted({label for _, label, split in rows if split != "test"} or {label for _, label, _ in rows})
    unknown = sorted({label for _, label, split in rows if split == "test"} - set(classes))
    if unknown:
        raise DataError(
            f"{path}: test rows have labels {unknown} that no training row has. Remove them or add training rows."
        )
    index = {c: i for i, c in enumerate(classes)}
    missing = [p for p, _, _ in rows if not (path.parent / p).is_file()]
    if missing:
        raise DataError(f"{len(missing)} file(s) listed in {path} do not exist, e.g. {missing[:3]}.")
    return classes, [(path.parent / p, index[label]) for p, label, _ in rows], [split for _, _, split in rows]


def stratified_split(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Split keeping class proportions; the same ``seed`` gives the same split."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {fraction}.")
    labels = [label for _, label in samples]
    try:
        kept, held = train_test_split(samples, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as exc:
        raise DataError(
            f"Cannot split {len(samples)} images into train/val with val_fraction={fraction}: {exc}. Add "
            "images to the smallest classes or provide a val/ folder."
        ) from None
    return sorted(kept), sorted(held)


def find_splits(data: str | Path, val_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Locate the labelled data.

    Layouts:
        ``data/train/<class>/...`` + ``data/val/<class>/...`` (``valid``/``validation`` too; ``test/`` optional);
        ``data/<class>/...``, split into train/val (stratified, seeded);
        ``data.csv`` with ``path,label`` rows, split likewise; a third column ``split`` (train/val/test)
    fixes each row's split (rows with ``test`` form the test split; unsplit rows go to train/val).
    """
    data = Path(data)
    if data.is_file() and data.suffix.lower() == ".csv":
        classes, samples, splits = read_csv(data)
        chosen = {name: [s for s, k in zip(samples, splits) if k == name] for name in (*SPLITS, "")}
        pool = chosen["train"] + chosen[""]
        if chosen["val"]:
            train, val = sorted(pool), chosen["val"]
        else:
            train, val = stratified_split(pool, val_fraction, seed)
        return Splits(classes, train, val, chosen["test"])
    if not data.exists():
        raise DataError(f"{str(data)!r} does not exist. Pass a folder of class sub-folders or a CSV of path,label.")
    train_dir = data / "train"
    val_dir = next((data / n for n in ("val", "valid", "validation") if (data / n).is_dir()), None)
    if train_dir.is_dir():
        classes, train = scan_class_folders(train_dir)
        test_dir = data / "test"
        test = scan_class_folders(test_dir, classes)[1] if test_dir.is_dir() else []
        if val_dir is None:
            train, val = stratified_split(train, val_fraction, seed)
        else:
            val = scan_class_folders(val_dir, classes)[1]
        return Splits(classes, train, val, test)
    classes, samples = scan_class_folders(data)
    train, val = stratified_split(samples, val_fraction, seed)
    return Splits(classes, train, val)
