"""Jobs across machines: 20 jobs, 2 ``backprop-serve worker`` trainers, one SIGKILLed mid-job.

The workers share only PostgreSQL and the S3 bucket. The killed trainer's lease
runs out (3 s here), the job is queued again and the other worker trains it.
Every job ends terminal, each succeeded job registered exactly one version, and
no job registered two.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.registry import JOB_FINISHED
from service.routes.train import job_config
from service.schemas import TrainRequest
from service.store import new_id, now_iso

from ..service.server import ROOT, free_port
from .postgres import Postgres
from .replicas import Cluster, make_cluster
from .s3 import S3Server

LEASE_SECONDS = 3
BOUND_SECONDS = 15  # a killed trainer's job is queued again within this
SHORT = {"optimizer": "sgd", "batch_size": 8, "max_epochs": 20, "tolerance": 0, "activate": False}
LONG = SHORT | {"batch_size": 1, "max_epochs": 400}  # the one the first trainer dies in


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def metric(self, name: str) -> float:
        for line in httpx.get(f"http://127.0.0.1:{self.port}/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def start_worker(cluster: Cluster, name: str) -> Worker:
    folder = cluster.folder / name
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ |= cluster.env | {
        "BACKPROP_ROLE": "worker",
        "BACKPROP_MODEL_DIR": str(folder / "cache"),
        "BACKPROP_JOB_STALE_SECONDS": str(LEASE_SECONDS),
        "BACKPROP_MAX_RUNNING_JOBS": "2",
        "BACKPROP_PORT": str(port),
        "PYTHONPATH": str(ROOT),
    }
    log = folder / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "worker"],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed with its trainer, as a pod
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/metrics")
            return Worker(proc, port, log)
        except httpx.TransportError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)


@pytest.fixture
def cluster(postgres_server: Postgres, s3_server: S3Server, tmp_path: Path) -> Iterator[Cluster]:
    url = postgres_server.create_database(f"jobs_{tmp_path.name}".lower()[:60])
    made = make_cluster(url, s3_server, tmp_path)
    try:
        yield made
    finally:
        made.stop()


@pytest.mark.timeout(900)  # generous: the machine may be shared
def test_twenty_jobs_two_trainers_one_killed(cluster: Cluster) -> None:
    registry = cluster.open_store().registry
    ids = [new_id("job-") for _ in range(20)]
    for n, job_id in enumerate(ids):
        config = job_config(TrainRequest.model_validate(LONG if n == 0 else SHORT))
        registry.create_job(job_id, config, None, now_iso(), max_queued=100)
    victim = ids[0]
    doomed = start_worker(cluster, "worker-a")
    survivor: Worker | None = None
    try:
        deadline = time.monotonic() + 60
        while (job := registry.job(victim)) is None or job.status != "running":
            assert time.monotonic() < deadline, doomed.log.read_text()[-3000:]
            time.sleep(0.05)
        assert job.owner is not None and f":{doomed.proc.pid}:" in job.owner
        survivor = start_worker(cluster, "worker-b")
        while (job := registry.job(victim)) is not None and not job.progress:
            assert job.status == "running", job  # still mid-training when killed
            assert time.monotonic() < deadline, doomed.log.read_text()[-3000:]
            time.sleep(0.05)
        os.killpg(doomed.proc.pid, signal.SIGKILL)  # the whole trainer, as a lost machine
        doomed.proc.wait(10)
        killed = time.monotonic()

        # not "running" forever: queued again (or already retried) within the bound
        while (job := registry.job(victim)) is not None and job.attempt < 2:
            if job.status == "queued":
                assert "stopped renewing its lease" in (job.error or ""), job
                break
            assert time.monotonic() - killed < BOUND_SECONDS, job
            time.sleep(0.1)

        deadline = time.monotonic() + 300
        while not all(j.status in JOB_FINISHED for j in registry.jobs(100)):
            running = [(j.job_id, j.status, j.owner) for j in registry.jobs(100)]
            assert time.monotonic() < deadline, running
            assert survivor.proc.poll() is None, survivor.log.read_text()[-3000:]
            time.sleep(0.2)

        jobs = {j.job_id: j for j in registry.jobs(100)}
        assert set(jobs) == set(ids)
        succeeded = {i for i, j in jobs.items() if j.status == "succeeded"}
        assert succeeded == set(ids), {i: (j.status, j.error) for i, j in jobs.items()}
        registered = [v for v in registry.versions() if v.job_id is not None]
        assert len(registered) == len(succeeded)  # versions registered == succeeded jobs
        assert sorted(v.job_id for v in registered) == sorted(succeeded)  # none twice
        for job_id in succeeded:  # each job's result names the version its row holds
            result = jobs[job_id].result
            assert result is not None
            assert registry.version(result["model_version"]).job_id == job_id  # type: ignore[union-attr]
        assert jobs[victim].attempt == 2
        assert survivor.metric("backprop_training_duplicate_executions_total") >= 1
    finally:
        for worker in (doomed, survivor):
            if worker is not None and worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
                try:
                    worker.proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.proc.pid, signal.SIGKILL)
                    worker.proc.wait()
