"""Defect detection from normal images only: PatchCore and PaDiM on pretrained features against the
same PatchCore on a randomly initialised backbone and a classical pipeline.

Data (``transferkit.anomaly.defects``): for each of scikit-image's brick, grass and gravel photos and
each seed, 60 normal 128-px crops to learn from (resized to the deep methods' input size) (20 % of
them held out for the threshold), and 60 test
crops: 30 normal and 30 with a synthetic scratch, spot or crack (exact masks). Methods:
- ``patchcore`` / ``padim``: ``anomaly fit``'s defaults (EfficientNet-Lite2 with its offline ImageNet
  weights, 320 px);
- ``patchcore (random init)``: the same network without pretrained weights (what transfer adds);
- ``classical (pixel features + kNN)``: scikit-image's per-pixel multi-scale intensity, edge and
  texture features, the nearest normal pixel's distance as the score (PatchCore's rule on
  hand-made features), smoothed like the others; image score = the largest pixel score.
Image AUROC and pixel AUROC on the test crops, mean ± std over textures × seeds.

Writes ``benchmarks/results/anomaly.json``: ``{method: {"image_auroc", "pixel_auroc", "aupro", "wall_seconds",
"image_auroc_std", "pixel_auroc_std", "per_texture": {texture: image AUROC mean}, "runs": [...]}}``; each
run row names its backbone and input size. ``--methods`` reruns some methods and keeps the others' rows.

Usage: python benchmarks/bench_anomaly.py [--seeds 0,1,2] [--textures brick,grass,gravel] [--methods patchcore]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SIZE = 128  # the crops' size; the deep methods resize them to their default input size (320 px)
METHODS = ("patchcore", "padim", "patchcore (random init)", "classical (pixel features + kNN)")


def deep(root: Path, method: str, seed: int) -> dict:
    from transferkit.anomaly.run import fit_anomaly

    pretrained = "random init" not in method
    run = fit_anomaly(root, method=method.split()[0], weights="imagenet" if pretrained else None, seed=seed)
    spec = run.model.spec()  # what ran, not what the defaults say
    return {"backbone": spec["backbone"].removeprefix("timm:"), "image_size": spec["image_size"],
            **{k: run.metrics[k] for k in ("image_auroc", "pixel_auroc", "aupro")}}  # fmt: skip


def classical(root: Path, seed: int, bank_size: int = 20000) -> dict:
    """Per-pixel scikit-image features; score = distance to the nearest of ``bank_size`` normal pixels."""
    from functools import partial

    from PIL import Image
    from skimage.feature import multiscale_basic_features
    from torchvision.transforms.v2.functional import gaussian_blur

    from transferkit.anomaly import read_anomaly_folder
    from transferkit.anomaly.metrics import aupro, image_auroc, pixel_auroc
    from transferkit.anomaly.patchcore import nearest_distance

    features = partial(multiscale_basic_features, intensity=True, edges=True, texture=True, sigma_min=1, sigma_max=8)
    gray = lambda path: np.asarray(Image.open(path).convert("L"), np.float32) / 255  # noqa: E731
    data = read_anomaly_folder(root)
    normal = np.concatenate([(f := features(gray(s.path))).reshape(-1, f.shape[-1]) for s in data.train])
    rng = np.random.default_rng(seed)
    bank = torch.from_numpy(normal[rng.choice(len(normal), min(bank_size, len(normal)), replace=False)])
    bank = bank.float()
    scores, maps, masks = [], [], []
    for sample in data.test:
        image = gray(sample.path)
        pixel = nearest_distance(torch.from_numpy(features(image).reshape(-1, bank.shape[1])).float(), bank)
        heat = gaussian_blur(pixel.reshape(1, 1, *image.shape), kernel_size=[33, 33], sigma=[4.0, 4.0])[0, 0]
        scores.append(float(heat.max()))
        maps.append(heat)
        mask = np.asarray(Image.open(sample.mask).convert("L")) > 0 if sample.mask else np.zeros(image.shape, bool)
        masks.append(torch.from_numpy(mask.astype(np.float32)))
    labels = [s.label for s in data.test]
    maps, masks = torch.stack(maps), torch.stack(masks)
    return {"backbone": None, "image_size": SIZE, "image_auroc": image_auroc(torch.tensor(scores), labels),
            "pixel_auroc": pixel_auroc(maps, masks), "aupro": aupro(maps, masks)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--textures", default="brick,grass,gravel")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated; others keep their rows")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "anomaly.json")
    args = parser.parse_args()
    from transferkit.anomaly.defects import write_defects
    from transferkit.engine.threads import configure_threads

    configure_threads(None)
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"--methods: no {unknown}; choose from {', '.join(METHODS)}.")
    stored = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs = [r for m, row in stored.items() if m not in methods for r in row["runs"]]
    for texture in args.textures.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                root = write_defects(Path(tmp) / texture, texture, 60, 30, 30, SIZE, seed=seed)
                for method in methods:
                    torch.manual_seed(seed)
                    start = time.perf_counter()
                    row = classical(root, seed) if method.startswith("classical") else deep(root, method, seed)
                    row = {"method": method, "texture": texture, "seed": seed, **row,
                           "wall_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
                    runs.append(row)
                    print(json.dumps(row), flush=True)
    result = {}
    for method in METHODS:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        image, pixel = np.array([r["image_auroc"] for r in mine]), np.array([r["pixel_auroc"] for r in mine])
        pro = np.array([r["aupro"] for r in mine])
        result[method] = {
            "image_auroc": round(float(image.mean()), 4), "image_auroc_std": round(float(image.std(ddof=1)), 4),
            "pixel_auroc": round(float(pixel.mean()), 4), "pixel_auroc_std": round(float(pixel.std(ddof=1)), 4),
            "aupro": round(float(pro.mean()), 4), "aupro_std": round(float(pro.std(ddof=1)), 4),
            "wall_seconds": round(float(np.mean([r["wall_seconds"] for r in mine])), 1),
            "backbone": mine[0].get("backbone"), "image_size": mine[0].get("image_size"),
            "per_texture": {t: round(float(np.mean([r["image_auroc"] for r in mine if r["texture"] == t])), 4)
                            for t in dict.fromkeys(r["texture"] for r in mine)},
            "runs": mine,
        }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for method, row in result.items():
        image = f"image AUROC {row['image_auroc']:.3f} ± {row['image_auroc_std']:.3f}"
        pixel = f"pixel AUROC {row['pixel_auroc']:.3f} ± {row['pixel_auroc_std']:.3f}"
        print(f"{method:36s} {image}  {pixel}  {row['wall_seconds']} s/run")


if __name__ == "__main__":
    main()
