"""The HTTP service: predictions for good images, the right status code for every bad input."""

import io
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from transferkit.engine.model import build_model

from ..conftest import make_tiny_backbone

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from transferkit.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client():
    torch.manual_seed(0)
    model = build_model(make_tiny_backbone(), 3, ["a", "b", "c"])
    return TestClient(create_app(model, top_k=2, max_bytes=50_000, max_pixels=100_000))


def _png(size=(20, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((*size, 3)) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_health_names_the_classes(client):
    assert client.get("/health").json()["classes"] == ["a", "b", "c"]


def test_multipart_and_raw_uploads_predict_top_k(client):
    multipart = client.post("/predict", files={"file": ("x.png", _png(), "image/png")})
    raw = client.post("/predict", content=_png(), headers={"content-type": "image/png"})
    for response in (multipart, raw):
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert len(predictions) == 2 and {p["class"] for p in predictions} <= {"a", "b", "c"}
    assert multipart.json()["predictions"] == raw.json()["predictions"]
    # the served numbers are the model's own softmax on the decoded, resized, normalised image
    from transferkit.data.images import load_image
    from transferkit.data.transforms import build_transforms

    net = client.app.state.model
    dc = net.data_config
    transform = build_transforms("none", dc.input_size, dc.mean, dc.std, train=False, interpolation=dc.interpolation)
    with torch.no_grad():
        probs = net(transform(load_image(_png(), name="x.png")).unsqueeze(0)).softmax(1)[0]
    values, indices = probs.topk(2)
    expected = [{"class": "abc"[i], "probability": round(float(v), 6)} for v, i in zip(values, indices.tolist())]
    assert raw.json()["predictions"] == expected


def test_oversized_upload_is_413(client):
    response = client.post("/predict", content=b"\x89PNG" + b"0" * 60_000, headers={"content-type": "image/png"})
    assert response.status_code == 413


def test_non_image_content_type_is_415(client):
    assert client.post("/predict", content=b"{}", headers={"content-type": "application/json"}).status_code == 415
    files = {"file": ("x.txt", b"hello", "text/plain")}
    assert client.post("/predict", files=files).status_code == 415


def test_corrupt_image_is_422_with_the_reason(client):
    response = client.post("/predict", content=_png()[:40], headers={"content-type": "image/png"})
    assert response.status_code == 422 and "Cannot read image" in response.json()["detail"]


def test_decompression_bomb_is_413_before_decoding(client):
    # a tiny PNG whose header claims 10,000 × 10,000 pixels
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")

    ihdr = (10_000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    bomb = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )
    assert len(bomb) < 200
    response = client.post("/predict", content=bomb, headers={"content-type": "image/png"})
    assert response.status_code == 413 and "bomb" in response.json()["detail"]


def test_inference_runs_off_the_event_loop():
    import asyncio

    torch.manual_seed(0)
    model = build_model(make_tiny_backbone(), 3, ["a", "b", "c"])
    on_loop = []

    def record(_module, _inputs):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)  # a blocking forward here would stall every other request
        except RuntimeError:
            on_loop.append(False)

    model.register_forward_pre_hook(record)
    client = TestClient(create_app(model, top_k=2))
    assert client.post("/predict", content=_png(), headers={"content-type": "image/png"}).status_code == 200
    assert client.post("/predict", files={"file": ("x.png", _png(), "image/png")}).status_code == 200
    assert on_loop == [False, False]


def test_concurrent_requests_are_answered_from_shared_forward_passes_with_the_single_request_numbers():
    import asyncio

    import httpx

    torch.manual_seed(0)
    model = build_model(make_tiny_backbone(), 3, ["a", "b", "c"]).eval()
    app = create_app(model, top_k=3, max_batch=16, max_wait_ms=300)
    bodies = [_png((16 + i, 20)) for i in range(8)]

    async def post_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            alone = (await client.post("/predict", content=bodies[0], headers={"content-type": "image/png"})).json()
            send = [client.post("/predict", content=b, headers={"content-type": "image/png"}) for b in bodies]
            return alone, [r.json() for r in await asyncio.gather(*send)]

    alone, together = asyncio.run(post_all())
    sizes = app.state.batcher.batch_sizes
    assert sizes[0] == 1 and sum(sizes) == 9 and max(sizes) > 1  # the 8 concurrent ones shared passes
    probs = lambda r: {p["class"]: p["probability"] for p in r["predictions"]}  # noqa: E731
    assert probs(together[0]) == pytest.approx(probs(alone), abs=1e-5)


def _post_together(app, bodies):
    import asyncio

    import httpx

    async def post_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            send = [client.post("/predict", content=b, headers={"content-type": "image/png"}) for b in bodies]
            return await asyncio.gather(*send)

    return asyncio.run(post_all())


def test_a_corrupt_upload_in_a_shared_batch_fails_alone():
    torch.manual_seed(0)
    model = build_model(make_tiny_backbone(), 3, ["a", "b", "c"]).eval()
    app = create_app(model, top_k=3, max_batch=16, max_wait_ms=300)
    good = _png((18, 20))
    alone = TestClient(create_app(model, top_k=3)).post("/predict", content=good, headers={"content-type": "image/png"})
    responses = _post_together(app, [good, b"\x89PNG\r\n\x1a\n" + b"x" * 40, good])
    assert [r.status_code for r in responses] == [200, 422, 200]
    assert "good.png" not in responses[1].json()["detail"] and "upload" in responses[1].json()["detail"]
    assert max(app.state.batcher.batch_sizes) == 3  # the bad one was in the same pass
    assert responses[0].json()["predictions"] == responses[2].json()["predictions"]
    first = {p["class"]: p["probability"] for p in responses[0].json()["predictions"]}
    assert first == pytest.approx({p["class"]: p["probability"] for p in alone.json()["predictions"]}, abs=1e-5)


def test_in_flight_batches_run_side_by_side():
    """With in_flight=2 two forward passes must overlap: each waits at a 2-party barrier inside the
    network, which only a second concurrent pass can release (one batch at a time would time out)."""
    import threading

    torch.manual_seed(0)
    model = build_model(make_tiny_backbone(), 3, ["a", "b", "c"]).eval()
    barrier = threading.Barrier(2, timeout=20)

    def meet(_module, _inputs):
        barrier.wait()  # returns an index; a pre-hook must return None to keep the inputs

    model.register_forward_pre_hook(meet)
    app = create_app(model, top_k=3, max_batch=1, max_wait_ms=0, in_flight=2)
    responses = _post_together(app, [_png((16, 20)), _png((17, 21))])
    assert [r.status_code for r in responses] == [200, 200]
    assert app.state.batcher.forward_passes == 2


def test_a_large_photo_gets_the_numbers_of_the_plain_transform():
    from transferkit.data.images import load_image
    from transferkit.data.transforms import eval_transform

    torch.manual_seed(0)
    model = build_model(make_tiny_backbone(), 3, ["a", "b", "c"]).eval()
    body = _png((300, 200))  # far more pixels than the input size: resized as soon as it is decoded
    response = TestClient(create_app(model, top_k=3)).post(
        "/predict", content=body, headers={"content-type": "image/png"}
    )
    with torch.inference_mode():
        expected = model(eval_transform(model.data_config)(load_image(body))[None]).softmax(1)[0]
    got = {p["class"]: p["probability"] for p in response.json()["predictions"]}
    assert got == pytest.approx(dict(zip(model.classes, expected.tolist())), abs=1e-5)
