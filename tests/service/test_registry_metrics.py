"""The job counts, the queued/running gauges and the active version come from the
registry: right while jobs wait and run, and the same after a restart.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from .server import Server, start_server
from .test_train import LONG_JOB, wait_for


def _metrics(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(server.get("/metrics").text)
        for s in family.samples
    }


def _jobs(samples: dict, outcome: str) -> float:  # type: ignore[type-arg]
    return float(samples[("backprop_training_jobs_total", frozenset({("outcome", outcome)}))])


def test_registry_gauges_while_jobs_wait_and_after_a_restart(
    fresh_store: Path, tmp_path: Path
) -> None:
    server = start_server(fresh_store, tmp_path)
    try:
        done = server.post("/train?wait=true", headers=server.auth, json={"max_epochs": 5})
        assert done.status_code == 201
        active = done.json()["result"]["model_version"]
        long_id = server.post("/train", headers=server.auth, json=LONG_JOB).json()["job_id"]
        wait_for(server, long_id, {"running"})
        for _ in range(2):
            assert server.post("/train", headers=server.auth, json={"max_epochs": 5}).is_success
        now = _metrics(server)
        assert now[("backprop_training_jobs_running", frozenset())] == 1
        assert now[("backprop_training_jobs_queued", frozenset())] == 2
        assert now[("backprop_active_version_info", frozenset({("version", active)}))] == 1
        succeeded = _jobs(now, "succeeded")
        assert succeeded >= 2  # the seed's default model and the one above
    finally:
        assert server.stop() == 0, server.output()

    again = start_server(fresh_store, tmp_path, env={"BACKPROP_TRAIN_ON_EMPTY": "false"})
    try:
        after = _metrics(again)
        assert _jobs(after, "succeeded") >= succeeded  # kept; the queued two may run already
        assert _jobs(after, "cancelled") >= 1  # the long job, cancelled by the shutdown
        # The version active before the stop, or a newer one that one of the two queued
        # jobs (running right after the restart) has registered and activated since.
        shown = [
            dict(labels)["version"]
            for (name, labels), value in after.items()
            if name == "backprop_active_version_info" and value == 1
        ]
        assert len(shown) == 1 and shown[0] >= active, (shown, active)  # ids sort by time
        for job in again.get("/train?limit=1000").json()["jobs"]:  # the two queued ones
            if job["status"] in ("queued", "running"):
                wait_for(again, job["job_id"], {"succeeded"})
        drained = _metrics(again)
        assert _jobs(drained, "succeeded") == succeeded + 2
        assert drained[("backprop_training_jobs_running", frozenset())] == 0
        assert drained[("backprop_training_jobs_queued", frozenset())] == 0
    finally:
        assert again.stop() == 0, again.output()
