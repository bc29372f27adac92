"""Roles and the job wall-clock limit on one machine: ``--role serve`` never trains,
``BACKPROP_JOB_TIMEOUT_SECONDS`` cancels a job that runs too long, saying why, and a
``backprop-serve worker`` stopped by SIGTERM gives its running job back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from service.routes.train import job_config
from service.schemas import TrainRequest
from service.store import ModelStore

from .server import ROOT, free_port, start_server
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


def test_a_stopped_worker_gives_its_job_back(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    registry = store.registry
    registry.create_job("long", job_config(TrainRequest.model_validate(LONG_JOB)), None, "t", 5)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ |= {
        "BACKPROP_MODEL_DIR": str(tmp_path / "models"),
        "BACKPROP_PORT": str(free_port()),
        "PYTHONPATH": str(ROOT),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "service", "worker"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while (job := registry.job("long")) is not None and not job.progress:
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        registry.expire_leases("t", max_attempts=3)  # what any other runner does next
        job = registry.job("long")
        assert job is not None and (job.status, job.attempt) == ("queued", 1), job
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        store.close()
