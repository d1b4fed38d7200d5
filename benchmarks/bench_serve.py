"""Load test of ``transferkit serve`` on loopback: requests/s and latency percentiles.

Builds an EfficientNet-Lite0 classifier (ImageNet weights, new 10-class head) at 96 px,
starts ``transferkit serve`` on 127.0.0.1 in a separate process, and posts real Fashion-MNIST PNGs from
1 and from 16 concurrent client threads (inference runs in the server's thread pool, so
concurrent requests overlap instead of queueing behind one another on the event loop).
Concurrent requests are micro-batched by the server; beside the served throughput the script
measures the raw batched throughput of the same model at the same input size (fp32, batch
``--max-batch``, as the server runs it) and prints their ratio.
Writes ``benchmarks/results/serve.json``.

Usage: python benchmarks/bench_serve.py [--requests 300] [--concurrency 1,16]
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import torch
from PIL import Image

from transferkit.backbones import DataConfig, create_backbone
from transferkit.data.fashion_mnist import CLASSES, load_fashion_mnist
from transferkit.engine.model import build_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_images_per_second(model: torch.nn.Module, size: int, batch: int, seconds: float = 5.0) -> float:
    """Images/s of ``model`` on random batches, as the server runs it (eval, inference mode, fp32)."""
    x = torch.rand(batch, 3, size, size)
    with torch.inference_mode():
        model(x)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            model(x)
            done += batch
    return done / (time.perf_counter() - started)


def start_server(model_file: Path, max_batch: int) -> tuple[subprocess.Popen, str]:
    """``transferkit serve`` in its own process (the clients' threads do not share its GIL); its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "transferkit", "serve", str(model_file), "--port", str(port)]
    server = subprocess.Popen([*command, "--max-batch", str(max_batch)])
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(f"{base}/health").raise_for_status()
            return server, base
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def load_test(base: str, bodies: list[bytes], clients: int, requests: int) -> dict:
    """``requests`` posts from ``clients`` keep-alive client threads: throughput, latency, mean batch."""
    local = threading.local()

    def one(i: int) -> float:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=120)
        started = time.perf_counter()
        response = local.client.post("/predict", content=bodies[i % len(bodies)], headers={"content-type": "image/png"})
        response.raise_for_status()
        return time.perf_counter() - started

    before = httpx.get(f"{base}/health").json()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    after = httpx.get(f"{base}/health").json()
    passes = after["forward_passes"] - before["forward_passes"]
    return {
        "clients": clients,
        "requests": requests,
        "requests_per_second": round(requests / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
        "wall_seconds": round(wall, 1),
        "mean_batch": round((after["images"] - before["images"]) / max(passes, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--max-batch", default="1,32", help="The server's micro-batch limits to test (1: none).")
    args = parser.parse_args()

    bb = create_backbone("efficientnet_lite0")
    dc = DataConfig(args.image_size, bb.data_config.mean, bb.data_config.std)
    model = build_model(bb, len(CLASSES), list(CLASSES), data_config=dc).eval()
    model_file = Path(tempfile.mkdtemp()) / "model.pt"
    model.save(model_file)
    images, _ = load_fashion_mnist("test")
    bodies = []
    for i in range(64):
        buffer = io.BytesIO()
        Image.fromarray(images[i].numpy()).save(buffer, "PNG")
        bodies.append(buffer.getvalue())
    raw = raw_images_per_second(model, args.image_size, batch=32)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.image_size}px EfficientNet-Lite0")
    print(f"raw batched inference (batch 32, fp32): {raw:.1f} images/s")
    rows = []
    for max_batch in map(int, args.max_batch.split(",")):
        server, base = start_server(model_file, max_batch)
        try:
            load_test(base, bodies, 1, 5)  # warm-up
            for clients in map(int, args.concurrency.split(",")):
                row = {"max_batch": max_batch, **load_test(base, bodies, clients, args.requests)}
                row.update(
                    raw_batched_images_per_second=round(raw, 1),
                    served_vs_raw=round(row["requests_per_second"] / raw, 3),
                )
                rows.append(row)
                print(row)
        finally:
            server.terminate()
            server.wait(timeout=10)
    results = Path(__file__).parent / "results" / "serve.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
