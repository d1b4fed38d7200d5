"""A small HTTP prediction service (FastAPI): ``transferkit serve MODEL``.

- ``GET /health``: model name, classes, input size.
- ``POST /predict``: one image, either as a multipart upload (field ``file``) or as the raw
  request body with an ``image/*`` content type; returns the top-k classes and probabilities.

Input validation: uploads larger than ``max_bytes`` → 413; content types other than images
→ 415; decompression bombs (more than ``max_pixels`` announced in the header) → 413; corrupt
or unreadable images → 422. Decoding and the model run in Starlette's thread pool, off the
event loop, so one request's inference does not block the others from being read, validated
and queued (PyTorch releases the GIL inside its kernels).
"""

# no "from __future__ import annotations": FastAPI must see the real Request annotation

from pathlib import Path
from typing import Any

import torch

from transferkit.errors import BadImageError, ConfigError

DEFAULT_MAX_BYTES = 20 * 2**20
DEFAULT_SERVE_PIXELS = 40_000_000


def create_app(
    model: str | Path | torch.nn.Module,
    top_k: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_SERVE_PIXELS,
):
    """The FastAPI application serving ``model`` (a :class:`TransferModel` or a saved one's path)."""
    try:
        from fastapi import FastAPI, HTTPException, Request
    except ImportError:
        raise ConfigError("Serving needs FastAPI and uvicorn: pip install 'transferkit[serve]'.") from None

    from transferkit.data.transforms import build_transforms
    from transferkit.engine.model import load_model

    net = load_model(model) if isinstance(model, (str, Path)) else model
    net.eval()
    dc = net.data_config
    transform = build_transforms("none", dc.input_size, dc.mean, dc.std, train=False, interpolation=dc.interpolation)
    k = min(top_k, len(net.classes))
    app = FastAPI(title="transferkit", description=f"{net.spec().get('backbone', 'ensemble')} classifier")
    app.state.model = net

    @app.get("/health")
    def health() -> dict[str, Any]:
        backbone = net.spec().get("backbone", "ensemble")
        return {"status": "ok", "backbone": backbone, "classes": net.classes, "input_size": dc.input_size}

    def _infer(data: bytes, name: str) -> torch.Tensor:
        image = _decode(data, name, max_pixels)
        with torch.inference_mode():
            return net(transform(image).unsqueeze(0)).float().softmax(1)[0]

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        data, name = await _upload(request, max_bytes)
        if len(data) > max_bytes:
            raise HTTPException(413, f"Image of {len(data):,} bytes exceeds the limit of {max_bytes:,} bytes.")
        if not data:
            raise HTTPException(422, "The upload is empty.")
        probs = await run_in_threadpool(_infer, data, name)  # decoding and inference off the event loop
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
