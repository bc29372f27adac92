"""The access log: batched writes that still lose no line on a clean stop."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sys
from pathlib import Path

import pytest

from service import logs
from service.app import create_app
from service.logs import AccessLog
from service.settings import Settings

from .server import start_server


def test_no_access_line_is_lost_on_sigterm(fresh_store: Path, tmp_path: Path) -> None:
    running = start_server(fresh_store, tmp_path)
    ids = [f"sigterm-{i:04d}" for i in range(300)]
    with running.client() as client:
        for request_id in ids:
            answer = client.post(
                "/predict",
                json={"instances": [[5.1, 3.5]]},
                headers={"X-Request-ID": request_id},
            )
            assert answer.status_code == 200
    # SIGTERM at once: the last lines are still queued (batches are written every 50 ms).
    assert running.stop(signal.SIGTERM) == 0, running.output()
    log = running.log.read_text(errors="replace")
    logged = [i for i in ids if "POST /predict 200 " in log and f"id={i}" in log]
    assert logged == ids, f"{len(ids) - len(logged)} access lines lost:\n{log[-2000:]}"
    lines = [line for line in log.splitlines() if "id=sigterm-" in line]
    assert [line.rsplit("id=", 1)[1] for line in lines] == ids  # once each, in order


def test_lines_are_queued_then_written_in_one_batch() -> None:
    stream = io.StringIO()
    log = AccessLog()
    log.configure(stream, "text")

    async def two_requests() -> str:
        log.write("GET", "/health/live", "/health/live", 200, 0.000123, "a")
        log.write("POST", "/predict", "/predict", 422, 0.0105, "b")
        queued = stream.getvalue()
        await asyncio.sleep(0.2)  # the flush timer
        return queued

    assert asyncio.run(two_requests()) == ""
    first, second = stream.getvalue().splitlines()
    assert first.endswith(" INFO backprop.access: GET /health/live 200 0.12ms id=a")
    assert second.endswith(" INFO backprop.access: POST /predict 422 10.50ms id=b")


def test_json_access_line_has_the_fields() -> None:
    stream = io.StringIO()
    log = AccessLog()
    log.configure(stream, "json")
    log.write("POST", "/predict", "/predict", 200, 0.002, "j")  # no event loop: written at once
    entry = json.loads(stream.getvalue())
    assert entry["level"] == "info" and entry["logger"] == "backprop.access"
    assert entry["message"] == "POST /predict 200 2.00ms"
    assert (entry["request_id"], entry["status"], entry["duration_ms"]) == ("j", 200, 2.0)
    assert entry["time"].endswith("+00:00") and "T" in entry["time"]


def test_the_lifespan_end_writes_the_queued_lines(
    fresh_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a flush timer that never fires, the server's shutdown still writes them."""
    monkeypatch.setattr(logs, "FLUSH_SECONDS", 3600.0)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    app = create_app(Settings(model_dir=fresh_store, api_token="t", log_level="info"))
    stream = io.StringIO()
    logs.access.configure(stream, "text")
    scope = {"type": "http", "method": "GET", "path": "/health/live", "query_string": b""}
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def serve() -> str:
        async with app.router.lifespan_context(app):
            for i in range(5):
                headers = [(b"x-request-id", f"life-{i}".encode())]
                await app({**scope, "headers": headers}, receive, send)
            return stream.getvalue()

    try:
        queued = asyncio.run(serve())
        assert "id=life-" not in queued  # still queued while serving
        assert [f"id=life-{i}" in stream.getvalue() for i in range(5)] == [True] * 5
    finally:
        logs.access.configure(sys.stderr, "text")
