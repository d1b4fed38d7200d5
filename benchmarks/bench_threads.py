"""Slowdown on a shared CPU: ``serve`` latency and a training epoch, alone and beside one competing
CPU-bound process, with torch's default thread count and with ``--threads auto`` (allowed CPUs minus
busy ones: ``transferkit.engine.threads``). On this machine the CLI's default (the allowed CPUs) equals
torch's default.

Each measurement runs in a fresh process (thread pools are fixed at start-up): an EfficientNet-Lite0
classifier (ImageNet weights) at 96 px served on loopback (median of 40 sequential requests), and one
epoch of full fine-tuning on 256 Fashion-MNIST images at 64 px. The competitor is a Python busy loop.
Writes ``benchmarks/results/threads.json``.

Usage: python benchmarks/bench_threads.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "threads.json"


def measure(policy: str) -> dict:
    """One worker's numbers (runs inside the fresh process)."""
    import io
    import statistics
    import threading

    import httpx
    import torch
    import uvicorn
    from PIL import Image

    from transferkit.engine.threads import configure_threads

    threads = configure_threads("auto") if policy == "auto" else torch.get_num_threads()
    from transferkit.api import make_data, train_classifier
    from transferkit.backbones import DataConfig, create_backbone
    from transferkit.data import TensorImageDataset
    from transferkit.data.fashion_mnist import CLASSES, balanced_subset, load_fashion_mnist
    from transferkit.engine.config import TrainConfig
    from transferkit.engine.model import build_model
    from transferkit.serve import create_app

    images, labels = load_fashion_mnist("train")
    bb = create_backbone("efficientnet_lite0")
    model = build_model(bb, 10, list(CLASSES), data_config=DataConfig(96, bb.data_config.mean, bb.data_config.std))
    server = uvicorn.Server(uvicorn.Config(create_app(model.eval()), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    buffer = io.BytesIO()
    Image.fromarray(images[0].numpy()).save(buffer, "PNG")
    latencies = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for _ in range(45):
            started = time.perf_counter()
            client.post("/predict", content=buffer.getvalue(), headers={"content-type": "image/png"})
            latencies.append(time.perf_counter() - started)
    server.should_exit = True
    idx = balanced_subset(labels, 26, seed=0)[:256]
    train, val = TensorImageDataset(images[idx], labels[idx]), TensorImageDataset(images[idx[:32]], labels[idx[:32]])
    data = make_data(train, val, list(CLASSES), bb.data_config, preset="light", image_size=64)
    cfg = TrainConfig(epochs=1, batch_size=32, progress=False, precision="32-true", accelerator="cpu")
    net = create_backbone("efficientnet_lite0")
    result = train_classifier(data, net, "fine-tune", cfg, log=lambda *_: None, report=False)
    return {
        "threads": threads,
        "serve_p50_ms": round(1000 * statistics.median(latencies[5:]), 1),
        "epoch_seconds": result.history[0]["epoch_seconds"],
    }


def run(policy: str, competing: bool) -> dict:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if competing else None
    try:
        if busy is not None:
            time.sleep(2)
        out = subprocess.run([sys.executable, __file__, "--worker", policy], capture_output=True, text=True, check=True)
    finally:
        if busy is not None:
            busy.kill()
    return {"policy": policy, "competing_process": competing, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        print(json.dumps(measure(sys.argv[2])))
        return
    rows = [run(policy, competing) for policy in ("torch-default", "auto") for competing in (False, True)]
    for policy in ("torch-default", "auto"):
        alone, shared = (next(r for r in rows if r["policy"] == policy and r["competing_process"] == c) for c in (0, 1))
        shared["serve_slowdown"] = round(shared["serve_p50_ms"] / alone["serve_p50_ms"], 2)
        shared["epoch_slowdown"] = round(shared["epoch_seconds"] / alone["epoch_seconds"], 2)
    for row in rows:
        print(row)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
