"""Load test of ``transferkit serve`` on loopback: requests/s and latency percentiles.

Builds an EfficientNet-Lite0 classifier (ImageNet weights, new 10-class head) at 96 px,
starts ``transferkit serve`` on 127.0.0.1 in a separate process, and posts real Fashion-MNIST PNGs from
1 and from 16 concurrent keep-alive connections (one asyncio load generator, as lean as ``wrk``, so
the clients take little of the 2 cores from the server; inference runs in the server's thread pool,
so concurrent requests overlap instead of queueing behind one another on the event loop).
Concurrent requests are micro-batched by the server; beside the served throughput the script
measures the raw batched throughput of the same model at the same input size (fp32, channels-last,
batch 32, as the server runs it) and prints their ratio.
Writes ``benchmarks/results/serve.json``.

Usage: python benchmarks/bench_serve.py [--requests 1000] [--concurrency 1,16]
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
import time
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
    """Images/s of ``model`` on random batches, as the server runs it (eval, inference mode, fp32,
    channels-last weights and inputs)."""
    model = model.to(memory_format=torch.channels_last)
    x = torch.rand(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
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


async def _post(reader, writer, body: bytes) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 POST of a PNG to /predict: (status, body). A load generator as lean as
    ``wrk``'s, so that on a 2-core machine the clients take as little CPU from the server as possible."""
    head = f"POST /predict HTTP/1.1\r\nhost: bench\r\ncontent-type: image/png\r\ncontent-length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


async def _clients(host: str, port: int, bodies: list[bytes], clients: int, requests: int) -> list[float]:
    """``requests`` posts shared by ``clients`` concurrent connections; each response is checked."""
    import asyncio

    queue = iter(range(requests))
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        for i in queue:
            started = time.perf_counter()
            status, payload = await _post(reader, writer, bodies[i % len(bodies)])
            latencies.append(time.perf_counter() - started)
            if status != 200 or b'"predictions"' not in payload:
                raise RuntimeError(f"request {i}: HTTP {status}: {payload[:200]!r}")
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return sorted(latencies)


def load_test(base: str, bodies: list[bytes], clients: int, requests: int) -> dict:
    """``requests`` posts from ``clients`` concurrent keep-alive connections: throughput, latency, mean batch."""
    import asyncio

    host, port = base.removeprefix("http://").split(":")
    before = httpx.get(f"{base}/health").json()
    started = time.perf_counter()
    latencies = asyncio.run(_clients(host, int(port), bodies, clients, requests))
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
    parser.add_argument("--requests", type=int, default=1000)
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
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.image_size}px EfficientNet-Lite0")

    def raw() -> float:  # in this process while the server idles, just before and after each load test:
        return raw_images_per_second(model, args.image_size, batch=32, seconds=3)  # this machine drifts ±10 %

    rows = []
    for max_batch in map(int, args.max_batch.split(",")):
        server, base = start_server(model_file, max_batch)
        try:
            load_test(base, bodies, 1, 5)  # warm-up
            for clients in map(int, args.concurrency.split(",")):
                before = raw()
                row = {"max_batch": max_batch, **load_test(base, bodies, clients, args.requests)}
                raw_speed = (before + raw()) / 2
                row.update(
                    raw_batched_images_per_second=round(raw_speed, 1),
                    served_vs_raw=round(row["requests_per_second"] / raw_speed, 3),
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
