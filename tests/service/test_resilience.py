"""Serving while training, surviving kill -9, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from .server import start_server
from .test_train import LONG_JOB, wait_for


def test_predictions_keep_flowing_during_a_training_job(private_server) -> None:  # type: ignore[no-untyped-def]
    server = private_server
    job_id = server.post("/train", headers=server.auth, json=LONG_JOB).json()["job_id"]
    wait_for(server, job_id, {"running"})
    failures = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(200):
            response = (client if i % 2 else httpx).post(  # keep-alive and fresh connections
                ("" if i % 2 else server.url) + "/predict", json={"instances": [[5.0, 3.0]]}
            )
            if response.status_code != 200:
                failures.append(response.status_code)
    assert not failures
    assert server.get(f"/train/{job_id}").json()["status"] == "running"
    server.client().delete(f"/train/{job_id}", headers=server.auth)
    wait_for(server, job_id, {"cancelled"})


def test_kill_9_during_a_job_then_restart(fresh_store: Path, tmp_path: Path) -> None:
    server = start_server(fresh_store, tmp_path)
    active = server.get("/model").json()["version"]
    versions = {v["version"] for v in server.get("/models").json()}
    job_id = server.post("/train", headers=server.auth, json=LONG_JOB).json()["job_id"]
    wait_for(server, job_id, {"running"})
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(10)

    # one attempt only, so the lost lease fails the job (tests/cluster covers the retries)
    lease = {"BACKPROP_JOB_MAX_ATTEMPTS": "1", "BACKPROP_JOB_STALE_SECONDS": "3"}
    again = start_server(fresh_store, tmp_path, env=lease)
    try:
        assert again.get("/health/ready").json()["model_version"] == active
        assert again.get("/model").json()["version"] == active
        assert {v["version"] for v in again.get("/models").json()} == versions
        job = wait_for(again, job_id, {"failed", "cancelled"}, timeout=20)
        assert job["error"]
        assert again.post("/predict", json={"instances": [[5.0, 3.0]]}).status_code == 200
    finally:
        assert again.stop() == 0
    deadline = time.monotonic() + 10  # the orphaned training process has stopped too
    while any(_trainer_running(fresh_store)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_trainer_running(fresh_store))


def _trainer_running(store: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"service.trainer" in cmdline and str(store).encode() in b" ".join(cmdline):
            found.append(int(entry.name))
    return found


def test_sigterm_finishes_cleanly_and_cancels_the_running_job(
    fresh_store: Path, tmp_path: Path
) -> None:
    server = start_server(fresh_store, tmp_path)
    job_id = server.post("/train", headers=server.auth, json=LONG_JOB).json()["job_id"]
    wait_for(server, job_id, {"running"})
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0, server.output()
    assert time.monotonic() - started < 10
    again = start_server(fresh_store, tmp_path)
    try:
        job = again.get(f"/train/{job_id}").json()
        assert job["status"] == "cancelled", job
        assert "shut down" in job["error"]
    finally:
        again.stop()
    assert not _trainer_running(fresh_store)
