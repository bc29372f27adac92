"""Two workers under 60 s of mixed load from 8 clients: no 5xx, no dropped connection,
only versions that exist, one active version at the end, no job left running, and
the server's counters equal to what the clients saw.
"""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from . import mixedload
from .server import Server, start_server

LOAD_SECONDS = 60


def _samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = server.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _delta(after: dict, before: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, frozenset(labels.items()))
    return float(after.get(key, 0.0) - before.get(key, 0.0))


def _drain(server: Server, timeout: float = 120) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        jobs = server.get("/train?limit=1000").json()["jobs"]
        if not [j for j in jobs if j["status"] in ("queued", "running")]:
            return list(jobs)
        assert time.monotonic() < deadline, [j["status"] for j in jobs]
        time.sleep(0.2)


def test_sixty_seconds_of_mixed_load_on_two_workers(fresh_store: Path, tmp_path: Path) -> None:
    env = {"BACKPROP_TRAIN_QUEUE_SIZE": "4"}
    server = start_server(fresh_store, tmp_path, workers=2, env=env)
    try:
        before = _samples(server)
        tally = mixedload.run(server.url, server.token, LOAD_SECONDS, clients=8)
        after = _samples(server)

        assert not tally.errors, tally.errors[:5]
        assert not tally.server_errors(), tally.server_errors()
        assert tally.requests > 200, tally.requests
        ops = {(route, method) for route, method, _ in tally.statuses}
        for needed in (
            ("/predict", "POST"),
            ("/backprop", "GET"),
            ("/models", "GET"),
            ("/train", "POST"),
            ("/models/{version}/activate", "POST"),
            ("/train/{job_id}", "DELETE"),
        ):
            assert needed in ops, (needed, ops)
        assert tally.jobs_created

        # The server counted exactly what the clients saw (by route, method, status).
        for (route, method, status), seen in tally.statuses.items():
            labels = {"route": route, "method": method, "status": str(status)}
            counted = _delta(after, before, "backprop_http_requests_total", **labels)
            assert counted == seen, (route, method, status, counted, seen)
        for version, rows in tally.rows_by_version.items():
            counted = _delta(after, before, "backprop_predictions_total", version=version)
            assert counted == rows, (version, counted, rows)

        # The registry is consistent once the queue has drained.
        jobs = _drain(server)
        listed = server.get("/models").json()
        versions = {v["version"] for v in listed}
        assert tally.answered_versions <= versions, tally.answered_versions - versions
        active = [v["version"] for v in listed if v["active"]]
        assert len(active) == 1, active
        mine = {j["job_id"]: j["status"] for j in jobs if j["job_id"] in tally.jobs_created}
        assert set(mine) == set(tally.jobs_created)
        assert set(mine.values()) <= {"succeeded", "cancelled", "failed"}
        assert "failed" not in mine.values(), [j for j in jobs if j["status"] == "failed"]
        final = _samples(server)
        finished = sum(
            _delta(final, before, "backprop_training_jobs_total", outcome=outcome)
            for outcome in ("succeeded", "failed", "cancelled")
        )
        assert finished == len(tally.jobs_created)
        assert final[("backprop_training_jobs_running", frozenset())] == 0
        assert final[("backprop_training_jobs_queued", frozenset())] == 0
        gauge = ("backprop_active_version_info", frozenset({("version", active[0])}))
        assert final[gauge] == 1
        deadline = time.monotonic() + 10  # both workers converge on the active version
        while {server.get("/model").json()["version"] for _ in range(10)} != set(active):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        assert server.stop() == 0, server.output()
