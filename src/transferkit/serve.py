"""A small HTTP prediction service (FastAPI): ``transferkit serve MODEL``.

- ``GET /health``: model name, classes, input size.
- ``POST /predict``: one image, either as a multipart upload (field ``file``) or as the raw
  request body with an ``image/*`` content type; returns the top-k classes and probabilities.

Input validation: uploads larger than ``max_bytes`` → 413; content types other than images
→ 415; decompression bombs (more than ``max_pixels`` announced in the header) → 413; corrupt
or unreadable images → 422. Decoding runs in Starlette's thread pool, off the event loop; the
decoded images of concurrent requests are then run as one batch (dynamic micro-batching,
:class:`MicroBatcher`: whatever is queued, up to ``max_batch`` images, waiting at most
``max_wait_ms`` for more), also off the event loop, so the network sees batches under load and a
single request is not delayed by more than ``max_wait_ms``.
"""

# no "from __future__ import annotations": FastAPI must see the real Request annotation

from collections import deque
from pathlib import Path
from typing import Any

import torch

from transferkit.errors import BadImageError, ConfigError

DEFAULT_MAX_BYTES = 20 * 2**20
DEFAULT_SERVE_PIXELS = 40_000_000


class MicroBatcher:
    """Runs ``net`` on batches of the (C, H, W) inputs awaited concurrently; returns each one's probabilities.

    The first queued input starts a batch; inputs already queued, and those arriving within
    ``max_wait_ms``, join it up to ``max_batch``; the forward pass runs in a worker thread. While it
    runs, new inputs queue up, so the next batch is as large as the load makes it.
    """

    def __init__(self, net: torch.nn.Module, max_batch: int = 32, max_wait_ms: float = 2.0) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ConfigError(f"Need max_batch >= 1 and max_wait_ms >= 0, got {max_batch} and {max_wait_ms}.")
        self.net, self.max_batch, self.max_wait = net, max_batch, max_wait_ms / 1000
        self.forward_passes = self.images = 0  # totals, reported by GET /health
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # the most recent passes' sizes (bounded)
        self._loop: Any = None

    async def __call__(self, image: torch.Tensor) -> torch.Tensor:
        import asyncio

        loop = asyncio.get_running_loop()
        # a new event loop (tests start one per client) or a worker that ended: a new queue and worker
        if self._loop is not loop or self._worker.done():
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._run())
        future = loop.create_future()
        await self._queue.put((image, future))
        return await future

    async def _next_batch(self) -> list[tuple[torch.Tensor, Any]]:
        import asyncio

        batch = [await self._queue.get()]
        deadline = self._loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return batch

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.net(images).float().softmax(1)

    async def _run(self) -> None:
        from starlette.concurrency import run_in_threadpool

        while True:
            batch = await self._next_batch()
            self.batch_sizes.append(len(batch))
            self.forward_passes, self.images = self.forward_passes + 1, self.images + len(batch)
            try:
                probs = await run_in_threadpool(self._forward, torch.stack([image for image, _ in batch]))
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error, the worker lives on
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), row in zip(batch, probs):
                if not future.done():
                    future.set_result(row)


def create_app(
    model: str | Path | torch.nn.Module,
    top_k: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_SERVE_PIXELS,
    max_batch: int = 32,
    max_wait_ms: float = 2.0,
):
    """The FastAPI application serving ``model`` (a :class:`TransferModel` or a saved one's path).

    ``max_batch``, ``max_wait_ms``: dynamic micro-batching of concurrent requests (:class:`MicroBatcher`).
    """
    try:
        from fastapi import FastAPI, HTTPException, Request
    except ImportError:
        raise ConfigError("Serving needs FastAPI and uvicorn: pip install 'transferkit[serve]'.") from None

    from transferkit.data.transforms import eval_transform
    from transferkit.engine.model import load_model

    net = load_model(model) if isinstance(model, (str, Path)) else model
    net.eval()
    dc = net.data_config
    transform = eval_transform(dc)
    k = min(top_k, len(net.classes))
    app = FastAPI(title="transferkit", description=f"{net.spec().get('backbone', 'ensemble')} classifier")
    app.state.model = net
    app.state.batcher = batcher = MicroBatcher(net, max_batch, max_wait_ms)

    @app.get("/health")
    def health() -> dict[str, Any]:
        backbone = net.spec().get("backbone", "ensemble")
        batching = {"max_batch": max_batch, "forward_passes": batcher.forward_passes, "images": batcher.images}
        return {"status": "ok", "backbone": backbone, "classes": net.classes, "input_size": dc.input_size, **batching}

    def _prepare(data: bytes, name: str) -> torch.Tensor:
        return transform(_decode(data, name, max_pixels))

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        data, name = await _upload(request, max_bytes)
        if len(data) > max_bytes:
            raise HTTPException(413, f"Image of {len(data):,} bytes exceeds the limit of {max_bytes:,} bytes.")
        if not data:
            raise HTTPException(422, "The upload is empty.")
        image = await run_in_threadpool(_prepare, data, name)  # decoding off the event loop
        probs = await batcher(image)  # with the other requests waiting now, in one forward pass
        values, indices = probs.topk(k)
        return {
            "file": name,
            "predictions": [
                {"class": net.classes[i], "probability": round(float(v), 6)}
                for v, i in zip(values.tolist(), indices.tolist())
            ],
        }

    return app


async def _read_body(request: Any, max_bytes: int) -> tuple[bytes, str]:
    """The request body, refused (413) as soon as it exceeds ``max_bytes`` (plus multipart framing)."""
    from fastapi import HTTPException

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + 4096:
        raise HTTPException(413, f"Upload of {int(declared):,} bytes exceeds the limit of {max_bytes:,} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes + 4096:  # multipart framing overhead allowed
            raise HTTPException(413, f"Upload exceeds the limit of {max_bytes:,} bytes.")
    return bytes(body), request.headers.get("content-type", "")


async def _form(request: Any, body: bytes, max_bytes: int) -> Any:
    """The multipart form parsed from the size-limited body already read (Starlette's public parser)."""
    from starlette.formparsers import MultiPartParser

    async def once():
        yield body
        yield b""

    parser = MultiPartParser(request.headers, once(), max_files=1, max_fields=16, max_part_size=max_bytes + 4096)
    return await parser.parse()


async def _upload(request: Any, max_bytes: int) -> tuple[bytes, str]:
    """The image bytes and file name of a raw ``image/*`` body or of a multipart field ``file``."""
    from fastapi import HTTPException

    body, content_type = await _read_body(request, max_bytes)
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return body, "upload"
    if not content_type.startswith("multipart/form-data"):
        raise HTTPException(415, f"Expected an image/* body or a multipart upload, got {content_type!r}.")
    upload = (await _form(request, body, max_bytes)).get("file")
    if upload is None or not hasattr(upload, "read"):
        raise HTTPException(422, "Send the image in a multipart field named 'file'.")
    upload_type = upload.content_type or ""
    data = await upload.read()
    if upload_type and not upload_type.startswith("image/") and upload_type != "application/octet-stream":
        raise HTTPException(415, f"Expected an image, got content type {upload_type!r}.")
    return data, upload.filename or "upload"


def _decode(data: bytes, name: str, max_pixels: int) -> Any:
    """The decoded image; undecodable input is 422, a decompression bomb 413."""
    from fastapi import HTTPException

    from transferkit.data.images import load_image

    try:
        return load_image(data, max_pixels=max_pixels, name=name)
    except BadImageError as exc:
        status = 413 if "decompression-bomb" in exc.reason else 422
        raise HTTPException(status, str(exc)) from None
