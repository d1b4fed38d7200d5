"""``transferkit serve MODEL``: HTTP prediction service (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def serve(
    model: Path = typer.Argument(..., help="A trained model (best.pt / model.pt)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8000),
    top_k: int = typer.Option(3),
    max_bytes: int = typer.Option(20 * 2**20, help="Largest accepted upload."),
    max_pixels: int = typer.Option(40_000_000, help="Decompression-bomb guard."),
    max_batch: int = typer.Option(32, help="Concurrent requests run as one batch, up to this many images."),
    max_wait_ms: float = typer.Option(2.0, help="How long a batch waits for more requests (ms)."),
    in_flight: Optional[int] = typer.Option(
        None,
        help="Batches run at once, each on one CPU thread. Default: torch's thread count (see --threads), "
        "so each core runs its own batch; 1: one batch at a time on all threads.",
    ),
) -> None:
    """Serve GET /health and POST /predict (multipart 'file' field, or a raw image/* body)."""
    import torch

    from transferkit.errors import ConfigError
    from transferkit.serve import create_app

    threads = torch.get_num_threads()
    in_flight = threads if in_flight is None else in_flight
    if in_flight > 1:  # K batches side by side share the threads (measured 1.x faster than one batch on K)
        torch.set_num_threads(max(1, threads // in_flight))

    try:
        import uvicorn
    except ImportError:
        raise ConfigError("Serving needs uvicorn: pip install 'transferkit[serve]'.") from None
    uvicorn.run(
        create_app(model, top_k, max_bytes, max_pixels, max_batch, max_wait_ms, in_flight),
        host=host,
        port=port,
        log_level="warning",
    )
