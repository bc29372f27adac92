"""Roles and the job wall-clock limit on one machine: ``--role serve`` never trains,
``BACKPROP_JOB_TIMEOUT_SECONDS`` cancels a job that runs too long, saying why."""

from __future__ import annotations

import time
from pathlib import Path

from .server import start_server
from .test_train import LONG_JOB, wait_for


def test_a_job_running_past_the_limit_is_cancelled_with_the_reason(
    fresh_store: Path, tmp_path: Path
) -> None:
    server = start_server(fresh_store, tmp_path, env={"BACKPROP_JOB_TIMEOUT_SECONDS": "2"})
    try:
        job_id = server.post("/train", headers=server.auth, json=LONG_JOB).json()["job_id"]
        wait_for(server, job_id, {"running"})
        job = wait_for(server, job_id, {"cancelled", "failed", "succeeded"}, timeout=30)
        assert job["status"] == "cancelled", job
        assert "longer than the limit of 2 s" in job["error"], job
        assert "BACKPROP_JOB_TIMEOUT_SECONDS" in job["error"], job
        assert server.post("/predict", json={"instances": [[5.0, 3.0]]}).status_code == 200
    finally:
        assert server.stop() == 0, server.output()


def test_the_serve_role_never_trains(fresh_store: Path, tmp_path: Path) -> None:
    server = start_server(fresh_store, tmp_path, env={"BACKPROP_ROLE": "serve"})
    try:
        created = server.post("/train", headers=server.auth, json={"max_epochs": 5})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        time.sleep(3)  # a training process would have claimed it within half a second
        job = server.get(f"/train/{job_id}").json()
        assert job["status"] == "queued" and job["attempt"] == 0, job
        assert server.post("/predict", json={"instances": [[5.0, 3.0]]}).status_code == 200
    finally:
        assert server.stop() == 0, server.output()
