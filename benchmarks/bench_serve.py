"""Load test of ``transferkit serve`` on loopback: requests/s and latency percentiles.

Builds an EfficientNet-Lite0 classifier (ImageNet weights, new 10-class head) at 96 px,
starts uvicorn on 127.0.0.1 in a background thread, and posts real Fashion-MNIST PNGs from
several client threads.

Usage: python benchmarks/bench_serve.py [--requests 300] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

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
    parser.add_argument("--concurrency", type=int, default=4)
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
    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        latencies = sorted(pool.map(one, range(args.requests)))
    wall = time.perf_counter() - started
    server.should_exit = True
    thread.join(timeout=5)
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(0.95 * (len(latencies) - 1))] * 1000
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.requests} requests, "
        f"{args.concurrency} concurrent clients, {args.image_size}px EfficientNet-Lite0"
    )
    print(f"{args.requests / wall:.1f} requests/s, latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, wall {wall:.1f} s")
    print(f"mean PNG size {np.mean([len(b) for b in bodies]):.0f} bytes")


if __name__ == "__main__":
    main()
