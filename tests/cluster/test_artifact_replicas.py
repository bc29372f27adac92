"""Three API replicas with empty caches on PostgreSQL + S3: swaps, bad artefacts, outages.

The replicas share nothing but the registry and the bucket. Every answer names
the version that served it; the checks hold each answer to that version.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ..service.server import Server
from .postgres import Postgres
from .replicas import (
    ROWS,
    Cluster,
    make_cluster,
    metric,
    predict,
    probabilities,
    serving,
)
from .s3 import BUCKET, S3Server

FAILURES = "backprop_model_load_failures_total"


@pytest.fixture(scope="module")
def cluster(
    postgres_server: Postgres, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("replicas")
    url = postgres_server.create_database(f"replicas_{folder.name}".lower()[:60])
    made = make_cluster(url, s3_server, folder)
    first = made.new_version(seed=0)
    made.promote(first)
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda _: made.start_replica(ready=False), range(3)))
        made.wait_all(lambda s: serving(s) == first, f"serves {first}", timeout=60)
        yield made
    finally:
        made.stop()


def test_replicas_start_from_the_bucket_with_empty_caches(cluster: Cluster) -> None:
    served = cluster.each(serving)
    assert len(set(served)) == 1 and served[0] is not None
    version = served[0]
    assert len({server.store for server in cluster.replicas}) == 3  # no folder is shared
    for server in cluster.replicas:
        # Each replica downloaded and verified its own copy; no folder is shared.
        assert (server.store / version / "weights.npz").is_file()
        body = server.get("/model").json()
        assert body["version"] == version and "load_error" not in body


def test_no_half_loaded_answers_across_five_promotions(cluster: Cluster) -> None:
    versions = [cluster.new_version(seed=10 + i) for i in range(5)]
    clients = [httpx.Client(base_url=s.url, timeout=30.0) for s in cluster.replicas]
    answers: list[tuple[int, dict[str, Any] | None]] = []
    lock = threading.Lock()
    stop = threading.Event()
    total = 2400

    def client_loop(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            with lock:
                if len(answers) >= total:
                    return
            got = predict(rng.choice(clients))
            with lock:
                answers.append(got)

    try:
        with ThreadPoolExecutor(6) as pool:  # a bounded concurrent client
            futures = [pool.submit(client_loop, i) for i in range(6)]
            for version in versions:
                while True:  # spread the promotions over the run
                    with lock:
                        done = len(answers)
                    if done >= total * (versions.index(version) + 1) / 7:
                        break
                    time.sleep(0.01)
                cluster.promote(version)
            for future in futures:
                future.result(timeout=300)
    finally:
        stop.set()
        for client in clients:
            client.close()

    statuses = [status for status, _ in answers]
    assert len(answers) >= 2000
    assert statuses.count(200) == len(answers), sorted(set(statuses))
    # The expected probabilities of every version, asked for by version (and equal to the
    # model's own arithmetic).
    expected: dict[str, list[dict[str, float]]] = {}
    store = cluster.open_store()
    for version in {body["model_version"] for _, body in answers if body}:
        response = cluster.replicas[0].post(
            "/predict", params={"version": version}, json={"instances": ROWS}
        )
        assert response.status_code == 200, response.text
        expected[version] = probabilities(response.json())
        clf = store.load(version)
        own = clf.predict_proba(np.array(ROWS))
        served = np.array([[p[c] for c in clf.classes] for p in expected[version]])
        np.testing.assert_allclose(served, own, rtol=1e-12, atol=1e-15)
    for _, body in answers:
        assert body is not None
        assert probabilities(body) == expected[body["model_version"]], body["model_version"]
    assert versions[-1] in expected and len(expected) >= 3  # the swaps happened mid-run
    cluster.wait_all(lambda s: serving(s) == versions[-1], f"serves {versions[-1]}")


def _alter(cluster: Cluster, version: str, how: str) -> None:
    client = cluster.s3.client()
    prefix = cluster.artifacts_url.removeprefix(f"s3://{BUCKET}/")
    key = f"{prefix}/{version}/weights.npz"
    data = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    if how == "truncate":
        data = data[: len(data) // 3]
    else:
        data = bytearray(data)
        data[len(data) // 2] ^= 0x55
        data = bytes(data)
    client.put_object(Bucket=BUCKET, Key=key, Body=data)


@pytest.mark.parametrize("how", ["truncate", "alter"])
def test_a_bad_artefact_is_never_switched_to(cluster: Cluster, how: str) -> None:
    old = serving(cluster.replicas[0])
    assert old is not None
    before = cluster.each(lambda s: metric(s, FAILURES))
    bad = cluster.new_version(seed=40 if how == "truncate" else 41)
    _alter(cluster, bad, how)
    cluster.promote(bad)

    def refused(server: Server) -> bool:
        body = server.get("/health/ready").json()
        return (body.get("load_error") or {}).get("version") == bad

    cluster.wait_all(refused, f"reports the load error of {bad}")
    for server, counted in zip(cluster.replicas, before, strict=True):
        ready = server.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["model_version"] == old
        assert "SHA-256" in ready.json()["load_error"]["error"]
        model = server.get("/model").json()
        assert model["version"] == old and model["load_error"]["version"] == bad
        answer = server.post("/predict", json={"instances": ROWS})
        assert answer.status_code == 200 and answer.json()["model_version"] == old
        assert metric(server, FAILURES) >= counted + 1
        assert not (server.store / bad).exists()
    listed = {m["version"]: m for m in cluster.replicas[0].get("/models").json()}
    assert listed[bad]["status"] == "invalid"

    # A good version after it is taken up everywhere, and the error is gone.
    good = cluster.new_version(seed=50 if how == "truncate" else 51)
    cluster.promote(good)
    cluster.wait_all(lambda s: serving(s) == good, f"serves {good}")
    for server in cluster.replicas:
        assert "load_error" not in server.get("/health/ready").json()


def test_an_s3_outage_keeps_serving_and_recovers_without_restart(cluster: Cluster) -> None:
    old = serving(cluster.replicas[0])
    assert old is not None
    pending = cluster.new_version(seed=60)  # uploaded before the outage, cached nowhere
    cluster.s3.stop()
    try:
        cluster.promote(pending)
        started = time.monotonic()
        answers = []
        while time.monotonic() - started < 5.0:  # a 5 s outage
            for server in cluster.replicas:
                ready = server.get("/health/ready")
                answer = server.post("/predict", json={"instances": ROWS})
                answers.append((ready.status_code, answer.status_code))
                assert answer.json()["model_version"] == old
            time.sleep(0.1)
        assert set(answers) == {(200, 200)}  # memory serves; readiness stays right
        for server in cluster.replicas:
            error = server.get("/health/ready").json()["load_error"]
            assert error["version"] == pending and "cannot be downloaded" in error["error"]
    finally:
        cluster.s3.start()
    # Back: every replica retries by itself and switches, without a restart.
    cluster.wait_all(lambda s: serving(s) == pending, f"serves {pending}", timeout=30)
    for server in cluster.replicas:
        assert server.proc.poll() is None
        assert "load_error" not in server.get("/health/ready").json()
        record = {m["version"]: m for m in server.get("/models").json()}[pending]
        assert record["status"] == "ok"  # an outage never marks a version bad


def test_a_replica_started_during_an_outage_becomes_ready_after_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    current = serving(cluster.replicas[0])
    cluster.s3.stop()
    try:
        late = cluster.start_replica(ready=False)
        deadline = time.monotonic() + 60  # a start on a loaded machine can be slow
        while True:
            ready = late.get("/health/ready")
            if ready.status_code == 503 and "load_error" in ready.json():
                break
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.1)
        assert "cannot be downloaded" in ready.json()["reason"]
        assert late.post("/predict", json={"instances": ROWS}).status_code == 503
    finally:
        cluster.s3.start()
    late.wait_ready(timeout=60)
    assert serving(late) == current
