"""Health, request ids, tokens and the command line, against a real server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .server import ROOT, Server, start_server


def test_live_and_ready_report_the_loaded_version(server: Server) -> None:
    live = server.get("/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "live"}
    ready = server.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["model_version"] == server.get("/model").json()["version"]


def test_empty_store_without_training_is_not_ready(tmp_path: Path) -> None:
    running = start_server(
        tmp_path / "models", tmp_path, env={"BACKPROP_TRAIN_ON_EMPTY": "false"}, ready=False
    )
    try:
        ready = running.get("/health/ready")
        assert ready.status_code == 503
        assert "no active version" in ready.json()["reason"]
        predict = running.post("/predict", json={"instances": [[5.0, 3.0]]})
        assert predict.status_code == 503
        assert "no active version" in predict.json()["detail"]
        assert running.get("/model").status_code == 503
    finally:
        assert running.stop() == 0


def test_request_id_is_echoed_or_made(server: Server) -> None:
    given = server.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = server.get("/health/live")
    assert len(made.headers["x-request-id"]) == 32
    predict = server.post("/predict", json={"instances": [[5, 3]]}, headers={"X-Request-ID": "p1"})
    assert predict.headers["x-request-id"] == "p1"
    error = server.get("/no/such/path", headers={"X-Request-ID": "e1"})
    assert error.status_code == 404
    assert error.headers["x-request-id"] == "e1"


def test_every_request_is_logged_with_its_id(server: Server) -> None:
    server.get("/health/live", headers={"X-Request-ID": "log-line-check"})
    log = server.wait_for_log("id=log-line-check")
    assert "GET /health/live 200" in log


def test_mutating_calls_need_the_token(server: Server) -> None:
    version = server.get("/model").json()["version"]
    missing = server.post(f"/models/{version}/activate")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = server.post(f"/models/{version}/activate", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    basic = server.post(f"/models/{version}/activate", headers={"Authorization": "Basic eA=="})
    assert basic.status_code == 401
    assert server.post("/train", json={}).status_code == 401
    assert server.post("/train", json={}, headers={"Authorization": "Bearer x"}).status_code == 403


def test_help_lists_every_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0
    for name in (
        "MODEL_DIR",
        "API_TOKEN",
        "HOST",
        "PORT",
        "WORKERS",
        "MODEL_NAME",
        "MAX_BATCH_ROWS",
        "MAX_BODY_BYTES",
        "LOG_LEVEL",
        "LOG_FORMAT",
    ):
        assert f"BACKPROP_{name}" in result.stdout
    for flag in ("--host", "--port", "--workers"):
        assert flag in result.stdout


def test_random_token_is_logged_once_and_works(tmp_path: Path, seed_store: Path) -> None:
    import shutil

    store = tmp_path / "models"
    shutil.copytree(seed_store, store)
    running = start_server(store, tmp_path, token="", env={"BACKPROP_API_TOKEN": ""})
    try:
        lines = [line for line in running.output().splitlines() if "token for this run" in line]
        assert len(lines) == 1
        token = lines[0].rsplit(" ", 1)[-1]
        version = running.get("/model").json()["version"]
        ok = running.post(
            f"/models/{version}/activate", headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200
    finally:
        running.stop()


def test_json_log_format(tmp_path: Path, seed_store: Path) -> None:
    import json
    import shutil

    store = tmp_path / "models"
    shutil.copytree(seed_store, store)
    running = start_server(store, tmp_path, env={"BACKPROP_LOG_FORMAT": "json"})
    try:
        running.get("/health/live", headers={"X-Request-ID": "json-1"})
        log = running.wait_for_log('"json-1"')
        entries = [json.loads(line) for line in log.splitlines() if line.strip()]
        access = [e for e in entries if e.get("request_id") == "json-1"]
        assert access and access[0]["status"] == 200 and access[0]["path"] == "/health/live"
    finally:
        running.stop()
