"""Load test of ``transferkit serve`` on loopback: requests/s and latency percentiles.

Builds an EfficientNet-Lite0 classifier (ImageNet weights, new 10-class head) at 96 px,
starts uvicorn on 127.0.0.1 in a background thread, and posts real Fashion-MNIST PNGs from
1 and from 16 concurrent client threads (inference runs in the server's thread pool, so
concurrent requests overlap instead of queueing behind one another on the event loop).
Writes ``benchmarks/results/serve.json``.

Usage: python benchmarks/bench_serve.py [--requests 300] [--concurrency 1,16]
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import torch
import uvicorn
from PIL import Image

from transferkit.backbones import DataConfig, create_backbone
from transferkit.data.fashion_mnist import CLASSES, load_fashion_mnist
from transferkit.engine.model import build_model
from transferkit.serve import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--image-size", type=int, default=96)
    args = parser.parse_args()

    bb = create_backbone("efficientnet_lite0")
    dc = DataConfig(args.image_size, bb.data_config.mean, bb.data_config.std)
    model = build_model(bb, len(CLASSES), list(CLASSES), data_config=dc).eval()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(model), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    images, _ = load_fashion_mnist("test")
    bodies = []
    for i in range(64):
        buffer = io.BytesIO()
        Image.fromarray(images[i].numpy()).save(buffer, "PNG")
        bodies.append(buffer.getvalue())
    url = f"http://127.0.0.1:{port}/predict"

    def one(i: int) -> float:
        started = time.perf_counter()
        response = httpx.post(url, content=bodies[i % len(bodies)], headers={"content-type": "image/png"})
        response.raise_for_status()
        return time.perf_counter() - started

    for i in range(5):  # warm-up
        one(i)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.image_size}px EfficientNet-Lite0")
    rows = []
    for clients in map(int, args.concurrency.split(",")):
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            latencies = sorted(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - started
        row = {
            "clients": clients,
            "requests": args.requests,
            "requests_per_second": round(args.requests / wall, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
            "wall_seconds": round(wall, 1),
        }
        rows.append(row)
        print(
            f"{clients:3d} clients: {row['requests_per_second']} req/s, p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms"
        )
    server.should_exit = True
    thread.join(timeout=5)
    print(f"mean PNG size {np.mean([len(b) for b in bodies]):.0f} bytes")
    results = Path(__file__).parent / "results" / "serve.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
