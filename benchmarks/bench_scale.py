"""Scale on the full Fashion-MNIST (60,000 train / 10,000 test, Debian's ``dataset-fashion-mnist``).

Rows, each measured in its own child process so that its peak RSS is its own:
  extract N   the product's feature extractor (``dataset_features``: bf16 autocast where native,
              channels-last, images decoded/resized/normalised in the loop) over N training images;
  partial N   one epoch of partial fine-tuning (top 2 layer groups + head train, the frozen bottom's
              outputs cached by the first epoch; the second epoch is timed);
  probe 60000 the full-data multi-depth linear probe: features of every layer group of all 60k
              training images, C chosen on the training images only, scored once on the 10k test images.
Each extraction row also measures, in the same process right after, the backbone's raw throughput
on the same batch size (bf16 autocast, channels-last, a tensor already in memory): extraction / raw.

Usage: python benchmarks/bench_scale.py [--sizes 1000,10000,60000] [--image-size 96] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

BATCH = 64
BACKBONE = "efficientnet_lite0"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def raw_throughput(image_size: int, repeats: int = 8) -> float:
    """Images/s of the backbone's forward on a batch already in memory (bf16 autocast, channels-last)."""
    import torch

    from transferkit.backbones import create_backbone

    net = create_backbone(BACKBONE).eval().to(memory_format=torch.channels_last)
    x = torch.randn(BATCH, 3, image_size, image_size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        net.forward_features(x)
        start = time.perf_counter()
        for _ in range(repeats):
            net.forward_features(x)
    return BATCH * repeats / (time.perf_counter() - start)


def _datasets(n: int, image_size: int):
    from transferkit.backbones import create_backbone
    from transferkit.data.dataset import TensorImageDataset, WithTransform
    from transferkit.data.fashion_mnist import load_fashion_mnist
    from transferkit.data.transforms import eval_transform

    backbone = create_backbone(BACKBONE)
    images, labels = load_fashion_mnist("train")
    test_x, test_y = load_fashion_mnist("test")
    train = TensorImageDataset(images[:n], labels[:n])
    test = TensorImageDataset(test_x, test_y)
    transform = eval_transform(backbone.data_config, image_size)
    return backbone, train, test, WithTransform(train, transform)


def row_extract(n: int, image_size: int) -> dict:
    from transferkit.engine.cache import dataset_features

    backbone, _, _, dataset = _datasets(n, image_size)
    before = raw_throughput(image_size)  # same process, just before and after: this machine's speed drifts
    start = time.perf_counter()  # by ±10 % over minutes, so one raw number measured elsewhere misleads
    features, _ = dataset_features(backbone, dataset, batch_size=BATCH)
    seconds = time.perf_counter() - start
    assert len(features) == n
    raw = (before + raw_throughput(image_size)) / 2
    return {
        "task": "extract",
        "n": n,
        "seconds": round(seconds, 2),
        "images_per_second": round(n / seconds, 1),
        "raw_images_per_second": round(raw, 1),
    }


def _config(**options):
    from transferkit.engine.config import TrainConfig

    return TrainConfig(batch_size=BATCH, progress=False, seed=0, **options)


def row_partial(n: int, image_size: int) -> dict:
    from transferkit.api import make_data, train_classifier
    from transferkit.data.dataset import TensorImageDataset
    from transferkit.data.fashion_mnist import CLASSES

    backbone, train, test, _ = _datasets(n, image_size)
    val = TensorImageDataset(test.images[9000:], test._labels[9000:])  # speed only: no accuracy is reported
    data = make_data(train, val, CLASSES, backbone.data_config, preset="none", image_size=image_size)
    start = time.perf_counter()
    result = train_classifier(
        data, backbone, "partial", _config(epochs=2, lr=1e-3), strategy_options={"groups": 2}, log=lambda *_: None
    )
    wall = time.perf_counter() - start
    epoch = result.history[-1]
    return {
        "task": "partial_fine_tune_epoch",
        "n": n,
        "seconds": round(epoch["epoch_seconds"], 2),
        "images_per_second": round(n / epoch["epoch_seconds"], 1),
        "cache_seconds": round(result.extra["cache_seconds"], 1),
        "wall_seconds": round(wall, 1),
    }


def row_probe(n: int, image_size: int) -> dict:
    from transferkit.api import evaluate, make_data, train_classifier
    from transferkit.backbones.multi_depth import group_names
    from transferkit.data.fashion_mnist import CLASSES

    backbone, train, test, _ = _datasets(n, image_size)
    messages: list[str] = []
    data = make_data(train, test, CLASSES, backbone.data_config, preset="none", image_size=image_size)
    start = time.perf_counter()
    # no validation set takes part: the head is solved on the training features (C by CV on them)
    result = train_classifier(
        data, backbone, "feature-extraction", _config(epochs=1, head_solver="lbfgs"),
        layers=group_names(backbone), log=messages.append, report=False,
    )  # fmt: skip
    fit_seconds = time.perf_counter() - start
    accuracy = evaluate(result.model, data.val, _config()).accuracy
    wall = time.perf_counter() - start
    return {
        "task": "multi_depth_probe",
        "n": n,
        "seconds": round(wall, 1),
        "images_per_second": round((n + len(test)) / wall, 1),
        "fit_seconds": round(fit_seconds, 1),
        "test_accuracy": round(accuracy, 4),
        "solved": next((m for m in messages if "head solved (" in m), ""),
    }


ROWS = {"extract": row_extract, "partial": row_partial, "probe": row_probe}
ROW_TASK = {"extract": "extract", "partial": "partial_fine_tune_epoch", "probe": "multi_depth_probe"}


def kept_rows(out: Path, tasks: set[str]) -> list[dict]:
    """The rows of ``tasks`` from an earlier results file: ``--skip`` reruns some rows, keeps the others."""
    if not tasks or not out.is_file():
        return []
    return [row for row in json.loads(out.read_text())["rows"] if row["task"] in tasks]


def child(task: str, n: int, image_size: int) -> None:
    import torch

    from transferkit.engine.threads import configure_threads

    configure_threads(None)
    torch.manual_seed(0)
    row = ROWS[task](n, image_size)
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("ROW " + json.dumps(row), flush=True)


def run_child(task: str, n: int, image_size: int) -> dict:
    cmd = [sys.executable, __file__, "--child", task, "--n", str(n), "--image-size", str(image_size)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{task} {n} failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("ROW "))
    row = json.loads(line[4:])
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,60000")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "scale.json")
    parser.add_argument("--child", choices=sorted(ROWS))
    parser.add_argument("--n", type=int)
    parser.add_argument("--skip", default="", help="Comma-separated tasks not to run (extract, partial, probe).")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.n, args.image_size)
    sizes = [int(s) for s in args.sizes.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    rows = [run_child(task, n, args.image_size) for task in ("extract", "partial") if task not in skip for n in sizes]
    if "probe" not in skip:
        rows.append(run_child("probe", max(sizes), args.image_size))
    rows += kept_rows(args.out, {ROW_TASK[task] for task in skip})
    extract = {r["n"]: r for r in rows if r["task"] == "extract"}
    partial = {r["n"]: r for r in rows if r["task"] == "partial_fine_tune_epoch"}
    largest, smallest = max(sizes), min(sizes)
    probe = next((r for r in rows if r["task"] == "multi_depth_probe"), None)

    def per_image_ratio(table: dict) -> float | None:
        if largest in table and smallest in table:
            big, small = table[largest], table[smallest]
            return round((big["seconds"] / big["n"]) / (small["seconds"] / small["n"]), 3)
        return None

    result = {
        "image_size": args.image_size,
        "backbone": BACKBONE,
        "batch_size": BATCH,
        "rows": rows,
        "raw_images_per_second": extract[largest]["raw_images_per_second"] if largest in extract else None,
        "extract_vs_raw_ratio": (
            round(extract[largest]["images_per_second"] / extract[largest]["raw_images_per_second"], 3)
            if largest in extract
            else None
        ),
        "extract_time_per_image_ratio": per_image_ratio(extract),
        "partial_time_per_image_ratio": per_image_ratio(partial),
        "full_probe_test_accuracy": probe["test_accuracy"] if probe else None,
        "full_probe_seconds": probe["seconds"] if probe else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
