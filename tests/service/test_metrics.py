"""GET /metrics with two workers: every number adds up across them, whichever one
answers the scrape. Read with prometheus_client's own parser.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from .server import Server, start_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
REQUESTS = "backprop_http_requests_total"
PREDICT = {"route": "/predict", "method": "POST", "status": "200"}
ROW = {"instances": [[5.1, 3.5]]}


@pytest.fixture(scope="module")
def two_workers(seed_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two workers on a copy of the seed store, their samples in a folder the test can read."""
    root = tmp_path_factory.mktemp("metrics")
    shutil.copytree(seed_store, root / "models")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(root / "prometheus")}
    running = start_server(root / "models", root, workers=2, env=env)
    yield running
    assert running.stop() == 0, running.output()


def samples_dir(server: Server) -> Path:
    return server.store.parent / "prometheus"


def scrape(server: Server) -> Samples:
    """One scrape on a fresh connection, parsed."""
    response = server.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def per_worker(server: Server, name: str, **labels: str) -> dict[int, float]:
    """A counter's value in each worker's own samples file."""
    counts = {}
    for path in samples_dir(server).glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)])
        found = [
            s.value for m in merged for s in m.samples if s.name == name and s.labels == labels
        ]
        counts[int(path.stem.split("_")[1])] = sum(found)
    return counts


def live_workers(server: Server) -> set[int]:
    """Workers that run and have loaded a model (each has then written samples files)."""
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in samples_dir(server).glob("gauge_*.db")}
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def test_predict_counter_rises_by_exactly_n_whichever_worker_answers(two_workers: Server) -> None:
    before = scrape(two_workers)
    sent = 0
    for _ in range(20):  # until both workers have answered some (the kernel picks)
        for _ in range(10):
            assert two_workers.post("/predict", json=ROW).status_code == 200
        sent += 10
        if sum(1 for n in per_worker(two_workers, REQUESTS, **PREDICT).values() if n) == 2:
            break
    assert sum(1 for n in per_worker(two_workers, REQUESTS, **PREDICT).values() if n) == 2

    scraped_by = per_worker(two_workers, REQUESTS, route="/metrics", method="GET", status="200")
    for _ in range(60):
        after = scrape(two_workers)
        assert value(after, REQUESTS, **PREDICT) == value(before, REQUESTS, **PREDICT) + sent
        count = "backprop_http_request_duration_seconds_count"
        rise = value(after, count, route="/predict", method="POST")
        assert rise == value(before, count, route="/predict", method="POST") + sent
        now = per_worker(two_workers, REQUESTS, route="/metrics", method="GET", status="200")
        answered = {pid for pid, n in now.items() if n > scraped_by.get(pid, 0)}
        if len(answered) == 2:
            break
    assert len(answered) == 2, "one worker answered every scrape"


def test_routes_are_templates_and_rows_are_counted(two_workers: Server) -> None:
    version = two_workers.get("/model").json()["version"]
    before = scrape(two_workers)
    infer = {"inputs": [{"name": "features", "shape": [2, 2], "datatype": "FP32"}]}
    infer["inputs"][0]["data"] = [5.1, 3.5, 6.7, 3.1]
    assert two_workers.post("/predict", json={"instances": [[5, 3]] * 3}).status_code == 200
    assert two_workers.post("/v2/models/iris-net/infer", json=infer).status_code == 200
    versioned = f"/v2/models/iris-net/versions/{version}/infer"
    assert two_workers.post(versioned, json=infer).status_code == 200
    assert two_workers.post("/v2/models/other/infer", json=infer).status_code == 404
    assert two_workers.get(f"/models/{version}").status_code == 200
    assert two_workers.get(f"/no/such/{version}").status_code == 404
    after = scrape(two_workers)

    rows = "backprop_predictions_total"
    assert value(after, rows, version=version) == value(before, rows, version=version) + 7
    expected = {
        ("/v2/models/{model_name}/infer", "200"): 1,
        ("/v2/models/{model_name}/infer", "404"): 1,
        ("/v2/models/{model_name}/versions/{model_version}/infer", "200"): 1,
        ("/models/{version}", "200"): 1,
        ("unmatched", "404"): 1,
    }
    for (route, status), n in expected.items():
        method = "GET" if "infer" not in route else "POST"
        labels = {"route": route, "method": method, "status": status}
        assert value(after, REQUESTS, **labels) == value(before, REQUESTS, **labels) + n, route
    routes = {dict(labels)["route"] for name, labels in after if name == REQUESTS}
    assert not [r for r in routes if version in r or "such" in r], routes


def model_info(samples: Samples) -> dict[str, float]:
    return {
        dict(k)["version"]: v for (name, k), v in samples.items() if name == "backprop_model_info"
    }


def wait_for_model_info(server: Server, expected: dict[str, float], timeout: float = 10) -> None:
    """Until several scrapes in a row show exactly ``expected`` (workers reload within 0.2 s)."""
    deadline, streak, seen = time.monotonic() + timeout, 0, {}
    while streak < 6:
        seen = {v: n for v, n in model_info(scrape(server)).items() if n or v in expected}
        streak = streak + 1 if seen == expected else 0
        assert time.monotonic() < deadline, f"model info {seen}, expected {expected}"
        time.sleep(0.05)


def test_training_jobs_model_info_and_load_failures(two_workers: Server) -> None:
    first = two_workers.get("/model").json()["version"]
    wait_for_model_info(two_workers, {first: 1})
    before = scrape(two_workers)
    job = two_workers.post(
        "/train?wait=true", json={"max_epochs": 50, "activate": False}, headers=two_workers.auth
    )
    assert job.status_code == 201, job.text
    second = job.json()["result"]["model_version"]
    # The outcome counts are the registry's: the job the API reports finished is
    # already counted, by whichever worker answers the scrape (fresh connections).
    jobs = "backprop_training_jobs_total"
    scraped_by = per_worker(two_workers, REQUESTS, route="/metrics", method="GET", status="200")
    for _ in range(60):
        after = scrape(two_workers)
        rise = value(after, jobs, outcome="succeeded") - value(before, jobs, outcome="succeeded")
        assert rise == 1
        now = per_worker(two_workers, REQUESTS, route="/metrics", method="GET", status="200")
        if len({pid for pid, n in now.items() if n > scraped_by.get(pid, 0)}) == 2:
            break
    assert len({pid for pid, n in now.items() if n > scraped_by.get(pid, 0)}) == 2
    # The duration histogram is still the worker's own: observed once it reaped the trainer.
    deadline = time.monotonic() + 10
    took = "backprop_training_job_duration_seconds_count"
    while value(after := scrape(two_workers), took, outcome="succeeded") == value(
        before, took, outcome="succeeded"
    ):
        assert time.monotonic() < deadline, "the finished job's duration was never observed"
        time.sleep(0.05)
    took = "backprop_training_job_duration_seconds_count"
    assert value(after, took, outcome="succeeded") == value(before, took, outcome="succeeded") + 1

    # A worker killed while it serves `first` must not report it forever, and its
    # counts must stay in the sums.
    workers = live_workers(two_workers)
    assert len(workers) == 2
    killed = min(workers)
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not (len(live_workers(two_workers)) == 2 and killed not in live_workers(two_workers)):
        assert time.monotonic() < deadline, two_workers.output()
        time.sleep(0.1)
    kept = scrape(two_workers)
    assert value(kept, REQUESTS, **PREDICT) == value(before, REQUESTS, **PREDICT)
    activate = two_workers.post(f"/models/{second}/activate", headers=two_workers.auth)
    assert activate.status_code == 200, activate.text
    wait_for_model_info(two_workers, {first: 0, second: 1})

    # `first` is no longer loaded anywhere: damage it, then ask for it by version.
    failures = "backprop_model_load_failures_total"
    assert value(scrape(two_workers), failures) == 0
    weights = next((two_workers.store / first).glob("*.npz"))
    weights.write_bytes(weights.read_bytes()[:-10])
    for _ in range(4):
        response = two_workers.get(f"/v2/models/iris-net/versions/{first}/ready")
        assert response.status_code == 503 and "verification" in response.json()["error"]
    for _ in range(4):
        assert value(scrape(two_workers), failures) == 1
