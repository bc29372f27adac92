"""Several uvicorn workers agree: activation reaches all of them, any worker answers any job."""

from __future__ import annotations

import time
from pathlib import Path

from .server import start_server


def test_activation_reaches_every_worker_within_a_second(fresh_store: Path, tmp_path: Path) -> None:
    server = start_server(fresh_store, tmp_path, workers=2)
    try:
        first = server.get("/model").json()["version"]
        job = server.post(
            "/train",
            params={"wait": "true"},
            headers=server.auth,
            json={"activate": False, "max_epochs": 50},
        )
        assert job.status_code == 201, job.text
        second = job.json()["result"]["model_version"]
        for _ in range(20):  # both workers serve the first version before the switch
            assert server.get("/model").json()["version"] == first

        activated = server.post(f"/models/{second}/activate", headers=server.auth)
        assert activated.status_code == 200
        switched = time.monotonic()
        seen: list[tuple[float, str]] = []
        while time.monotonic() - switched < 1.5:
            answer = server.post("/predict", json={"instances": [[5.0, 3.0]]})
            seen.append((time.monotonic() - switched, answer.json()["model_version"]))
        late_old = [t for t, version in seen if version != second and t >= 1.0]
        assert not late_old, f"a worker still served {first} {late_old} s after the switch"
        versions = [
            server.post("/predict", json={"instances": [[5.0, 3.0]]}).json()["model_version"]
            for _ in range(50)
        ]
        assert versions == [second] * 50
        assert {server.get("/model").json()["version"] for _ in range(20)} == {second}
        assert {server.get("/health/ready").json()["model_version"] for _ in range(20)} == {second}
    finally:
        assert server.stop() == 0, server.output()


def test_any_worker_answers_for_any_job(fresh_store: Path, tmp_path: Path) -> None:
    server = start_server(fresh_store, tmp_path, workers=2)
    try:
        created = server.post("/train", headers=server.auth, json={"max_epochs": 30})
        assert created.status_code == 202
        job_id = created.json()["job_id"]
        statuses = []
        for _ in range(40):  # each on a fresh connection, so both workers take some
            response = server.get(f"/train/{job_id}")
            assert response.status_code == 200
            statuses.append(response.json()["status"])
        deadline = time.monotonic() + 30
        while server.get(f"/train/{job_id}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        assert set(statuses) <= {"queued", "running", "succeeded"}
        jobs = [j for j in server.get("/train").json()["jobs"] if j["status"] == "running"]
        assert not jobs
    finally:
        assert server.stop() == 0, server.output()


def test_one_job_trains_at_a_time_across_workers(fresh_store: Path, tmp_path: Path) -> None:
    server = start_server(fresh_store, tmp_path, workers=2)
    try:
        ids = [
            server.post("/train", headers=server.auth, json={"max_epochs": 400}).json()["job_id"]
            for _ in range(4)
        ]
        deadline = time.monotonic() + 60
        while True:
            jobs = {j["job_id"]: j for j in server.get("/train").json()["jobs"]}
            running = [i for i in ids if jobs[i]["status"] == "running"]
            assert len(running) <= 1, running
            if all(jobs[i]["status"] == "succeeded" for i in ids):
                break
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.02)
        spans = sorted((jobs[i]["started_at"], jobs[i]["finished_at"]) for i in ids)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, spans
    finally:
        assert server.stop() == 0, server.output()
