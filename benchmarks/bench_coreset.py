"""PatchCore's greedy coreset: the shipped lazy, region-blocked k-centre selection against the plain one
(every row updated at every step, anomalib's algorithm), in the same process on the same points.

Points: the real patch features that ``anomaly fit``'s defaults give on the anomaly benchmark's data
(EfficientNet-Lite2 at 320 px, strides 4 and 8, 48 normal 128-px grass crops, seed 0: about 300k
patches). Both pick 1 % and 10 % of them. Reported: seconds, the speed-up, how many of the first picks
agree (the two are the same algorithm; rounding of a matrix product against a matrix-vector product
can break a near-tie differently) and the covering radius (the largest distance of a point to its
nearest pick: what the coreset is for; it should be the same).

Writes ``benchmarks/results/coreset.json``: a list of ``{"share", "count", "points", "plain_seconds",
"lazy_seconds", "speedup", "same_first_picks", "plain_radius", "lazy_radius"}``.

Usage: python benchmarks/bench_coreset.py [--shares 0.01,0.1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor

OUT = Path(__file__).parent / "results" / "coreset.json"


def plain_greedy(points: Tensor, count: int, seed: int = 0, dims: int = 128) -> Tensor:
    """Greedy k-centre updating every row's nearest-pick distance at every step (the baseline)."""
    generator = torch.Generator().manual_seed(seed)
    if points.shape[1] > dims:
        points = points @ (torch.randn(points.shape[1], dims, generator=generator) / dims**0.5)
    first = int(torch.randint(len(points), (1,), generator=generator))
    squares = points.pow(2).sum(1)
    nearest = squares - 2 * (points @ points[first]) + squares[first]
    chosen = [first]
    for _ in range(count - 1):
        index = int(nearest.argmax())
        chosen.append(index)
        torch.minimum(nearest, squares - 2 * (points @ points[index]) + squares[index], out=nearest)
    return torch.tensor(chosen)


def patch_points(seed: int = 0) -> Tensor:
    from transferkit.anomaly.data import AnomalyImages, read_anomaly_folder
    from transferkit.anomaly.defects import write_defects
    from transferkit.anomaly.model import build_anomaly_model
    from transferkit.anomaly.patchcore import patch_rows

    model = build_anomaly_model()
    with tempfile.TemporaryDirectory() as tmp:
        data = read_anomaly_folder(write_defects(Path(tmp) / "grass", "grass", 60, 30, 30, 128, seed=seed))
        embeddings = model.embed(AnomalyImages(data.train[12:], model.features.data_config, model.image_size))
    return patch_rows(embeddings).contiguous()


def radius(points: Tensor, chosen: Tensor) -> float:
    from transferkit.anomaly.patchcore import nearest_distance

    return float(nearest_distance(points, points[chosen]).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", default="0.01,0.1")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from transferkit.anomaly.patchcore import greedy_coreset
    from transferkit.engine.threads import configure_threads

    configure_threads(None)
    points = patch_points()
    rows = []
    for share in (float(s) for s in args.shares.split(",")):
        count = round(share * len(points))
        timed = {}
        for name, select in (("plain", plain_greedy), ("lazy", greedy_coreset)):
            start = time.perf_counter()
            timed[name] = (select(points, count), time.perf_counter() - start)
        (plain, plain_s), (lazy, lazy_s) = timed["plain"], timed["lazy"]
        differ = (plain != lazy).nonzero()
        rows.append({
            "share": share, "count": count, "points": len(points), "plain_seconds": round(plain_s, 1),
            "lazy_seconds": round(lazy_s, 1), "speedup": round(plain_s / lazy_s, 2),
            "same_first_picks": int(differ[0]) if len(differ) else count,
            "plain_radius": round(radius(points, plain), 4), "lazy_radius": round(radius(points, lazy), 4),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
