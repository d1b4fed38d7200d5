"""A small HTTP prediction service (FastAPI): ``transferkit serve MODEL``.

- ``GET /health``: model name, classes, input size.
- ``POST /predict``: one image, either as a multipart upload (field ``file``) or as the raw
  request body with an ``image/*`` content type; returns the top-k classes and probabilities.

Input validation: uploads larger than ``max_bytes`` → 413; content types other than images
→ 415; decompression bombs (more than ``max_pixels`` announced in the header) → 413; corrupt
or unreadable images → 422. Decoding runs in Starlette's thread pool, off the event loop; the
decoded images of concurrent requests are then resized, normalised and run as one batch (dynamic
micro-batching, :class:`MicroBatcher`: whatever is queued, up to ``max_batch`` images, waiting at
most ``max_wait_ms`` for more), also off the event loop, so the network sees batches under load and
a single request is not delayed by more than ``max_wait_ms``. The network runs channels-last.
"""

# no "from __future__ import annotations": FastAPI must see the real Request annotation

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from transferkit.errors import BadImageError, ConfigError

DEFAULT_MAX_BYTES = 20 * 2**20
DEFAULT_SERVE_PIXELS = 40_000_000


class MicroBatcher:
    """Runs ``net`` on batches of the inputs awaited concurrently; returns each one's probabilities.

    The first queued input starts a batch; inputs already queued, and those arriving within
    ``max_wait_ms``, join it up to ``max_batch``. In a worker thread, ``load`` turns each input into
    a (C, H, W) tensor (e.g. decodes the bytes of an upload; its exception fails that input alone;
    default: the input is one), ``prepare`` makes the batch of them (default ``torch.stack``) and the
    network runs on it. While they run, new inputs
    queue up, so the next batch is as large as the load makes it. ``in_flight`` batches may run at
    once (each in its own thread): with torch on one thread each, K cores run K batches side by side
    instead of one batch whose threads wait for each other and for the HTTP work at every layer.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        max_batch: int = 32,
        max_wait_ms: float = 2.0,
        prepare: Callable[[list[torch.Tensor]], torch.Tensor] = torch.stack,
        in_flight: int = 1,
        load: Callable[[Any], torch.Tensor] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0 or in_flight < 1:
            raise ConfigError(
                f"Need max_batch >= 1, max_wait_ms >= 0 and in_flight >= 1, "
                f"got {max_batch}, {max_wait_ms} and {in_flight}."
            )
        self.net, self.max_batch, self.max_wait = net, max_batch, max_wait_ms / 1000
        self.prepare, self.in_flight, self.load = prepare, in_flight, load
        self.forward_passes = self.images = 0  # totals, reported by GET /health
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # the most recent passes' sizes (bounded)
        self._loop: Any = None
        self._workers: list[Any] = []

    async def __call__(self, item: Any) -> torch.Tensor:
        import asyncio

        loop = asyncio.get_running_loop()
        # a new event loop (tests start one per client) or a worker that ended: a new queue and workers
        if self._loop is not loop or any(worker.done() for worker in self._workers):
            if self._loop is loop:
                for worker in self._workers:
                    worker.cancel()
            self._loop, self._queue = loop, asyncio.Queue()
            self._workers = [loop.create_task(self._run()) for _ in range(self.in_flight)]
        future = loop.create_future()
        await self._queue.put((item, future))
        return await future

    async def _next_batch(self) -> list[tuple[Any, Any]]:
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

    def _forward(self, items: list[Any]) -> list[torch.Tensor | Exception]:
        """Each item's probabilities, or the exception its ``load`` raised."""
        loaded: list[torch.Tensor | Exception] = []
        for item in items:
            try:
                loaded.append(self.load(item) if self.load else item)
            except Exception as exc:  # noqa: BLE001 - this item's error, the others go on
                loaded.append(exc)
        images = [x for x in loaded if isinstance(x, torch.Tensor)]
        if not images:
            return loaded
        with torch.inference_mode():
            batch = self.prepare(images).contiguous(memory_format=torch.channels_last)
            rows = iter(self.net(batch).float().softmax(1))
        return [next(rows) if isinstance(x, torch.Tensor) else x for x in loaded]

    async def _run(self) -> None:
        from starlette.concurrency import run_in_threadpool

        while True:
            batch = await self._next_batch()
            self.batch_sizes.append(len(batch))
            self.forward_passes, self.images = self.forward_passes + 1, self.images + len(batch)
            try:
                results = await run_in_threadpool(self._forward, [item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error, the worker lives on
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


def create_app(
    model: str | Path | torch.nn.Module,
    top_k: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_SERVE_PIXELS,
    max_batch: int = 32,
    max_wait_ms: float = 2.0,
    in_flight: int = 1,
):
    """The FastAPI application serving ``model`` (a :class:`TransferModel` or a saved one's path).

    ``max_batch``, ``max_wait_ms``, ``in_flight``: dynamic micro-batching of concurrent requests
    (:class:`MicroBatcher`).
    """
    try:
        from fastapi import FastAPI, HTTPException, Request
        from fastapi.responses import JSONResponse
    except ImportError:
        raise ConfigError("Serving needs FastAPI and uvicorn: pip install 'transferkit[serve]'.") from None

    from transferkit.data.transforms import eval_transform, transform_batch
    from transferkit.engine.model import load_model

    net = load_model(model) if isinstance(model, (str, Path)) else model
    net.eval().to(memory_format=torch.channels_last)  # 1.3-1.7x faster on CPU at batch 8-16 (measured)
    dc = net.data_config
    transform = eval_transform(dc)
    k = min(top_k, len(net.classes))
    app = FastAPI(title="transferkit", description=f"{net.spec().get('backbone', 'ensemble')} classifier")
    app.state.model = net
    prepare = lambda images: transform_batch(transform, images)  # noqa: E731 - one resize per size, not per image
    resize, largest = transform.transforms[0], 4 * dc.input_size**2  # eval_transform: [resize, normalise]

    def load(upload: tuple[bytes, str]) -> torch.Tensor:
        """Decoded (in the batch's thread: no thread hop per request); a large photo is resized at
        once, so that a batch holds input-sized tensors (its resize to the same size then leaves it)."""
        image = _decode(*upload, max_pixels)
        return resize(image) if image.shape[-1] * image.shape[-2] > largest else image

    app.state.batcher = batcher = MicroBatcher(net, max_batch, max_wait_ms, prepare, in_flight, load)

    @app.get("/health")
    def health() -> dict[str, Any]:
        backbone = net.spec().get("backbone", "ensemble")
        batching = {"max_batch": max_batch, "in_flight": in_flight, "forward_passes": batcher.forward_passes}
        batching["images"] = batcher.images
        return {"status": "ok", "backbone": backbone, "classes": net.classes, "input_size": dc.input_size, **batching}

    @app.post("/predict", response_model=None)
    async def predict(request: Request) -> JSONResponse:
        data, name = await _upload(request, max_bytes)
        if len(data) > max_bytes:
            raise HTTPException(413, f"Image of {len(data):,} bytes exceeds the limit of {max_bytes:,} bytes.")
        if not data:
            raise HTTPException(422, "The upload is empty.")
        probs = await batcher((data, name))  # decoded and run with the requests waiting now, off the event loop
        values, indices = probs.topk(k)
        predictions = [
            {"class": net.classes[i], "probability": round(v, 6)} for v, i in zip(values.tolist(), indices.tolist())
        ]
        return JSONResponse({"file": name, "predictions": predictions})  # as is: no response-model validation

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
