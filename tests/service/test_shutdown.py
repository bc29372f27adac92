"""SIGTERM: during load (in-flight requests finish, new connections are refused, the
running job ends cancelled, exit 0), and while the default model trains on an empty store.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from service.store import is_valid_version

from .server import start_server
from .test_train import LONG_JOB, wait_for

ROW = {"instances": [[5.0, 3.0]]}


def test_sigterm_during_load(fresh_store: Path, tmp_path: Path) -> None:
    server = start_server(fresh_store, tmp_path, env={"BACKPROP_TRAIN_WAIT_SECONDS": "3"})
    long_id = server.post("/train", headers=server.auth, json=LONG_JOB).json()["job_id"]
    wait_for(server, long_id, {"running"})

    results: list[tuple[float, str]] = []  # (when, status code or error class)
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                try:
                    answer = client.post("/predict", json={"instances": [[5.0, 3.0]] * 200})
                    results.append((time.monotonic(), str(answer.status_code)))
                except httpx.TransportError as exc:
                    results.append((time.monotonic(), type(exc).__name__))
                    time.sleep(0.05)

    in_flight: list[httpx.Response | BaseException] = []

    def waiter() -> None:  # a call that takes 3 s: surely in flight when SIGTERM comes
        try:
            in_flight.append(
                server.post("/train?wait=true", headers=server.auth, json={"max_epochs": 5})
            )
        except BaseException as exc:  # recorded, then asserted on
            in_flight.append(exc)

    loaders = [threading.Thread(target=load) for _ in range(4)]
    waiters = [threading.Thread(target=waiter) for _ in range(2)]
    for thread in loaders + waiters:
        thread.start()
    deadline = time.monotonic() + 30  # both waiters' jobs exist: their calls are in flight
    while len([j for j in server.get("/train").json()["jobs"] if j["status"] == "queued"]) < 2:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    signalled = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    refused = []
    for _ in range(5):  # while the in-flight calls still run, no new connection is taken
        try:
            httpx.get(server.url + "/health/live", timeout=5)
            refused.append(False)
        except httpx.ConnectError:
            refused.append(True)
        time.sleep(0.1)
    code = server.proc.wait(20)
    stop.set()
    for thread in loaders + waiters:
        thread.join(30)

    assert code == 0, server.output()
    assert all(refused), refused
    assert len(in_flight) == 2
    for answer in in_flight:
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 202 and answer.json()["status"] == "queued"
    before = [outcome for when, outcome in results if when < signalled]
    assert before and set(before) == {"200"}, set(before)
    assert not [o for _, o in results if o.startswith("5")]

    again = start_server(fresh_store, tmp_path)
    try:
        job = again.get(f"/train/{long_id}").json()
        assert job["status"] == "cancelled" and "shut down" in job["error"], job
        stuck = [j for j in again.get("/train").json()["jobs"] if j["status"] == "running"]
        assert all(j["job_id"] != long_id for j in stuck)
    finally:
        assert again.stop() == 0, again.output()


def test_sigterm_while_the_default_model_trains_on_an_empty_store(tmp_path: Path) -> None:
    store = tmp_path / "models"
    env = {"BACKPROP_TEST_WRITE_DELAY_SECONDS": "30"}  # the default job is quick: hold it
    server = start_server(store, tmp_path, ready=False, env=env)
    deadline = time.monotonic() + 60
    while not [j for j in server.get("/train").json()["jobs"] if j["status"] == "running"]:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    (job,) = server.get("/train").json()["jobs"]
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0, server.output()
    assert time.monotonic() - started < 15
    assert not [p for p in store.iterdir() if p.is_dir() and is_valid_version(p.name)]

    again = start_server(store, tmp_path, ready=False)
    try:
        first = again.get(f"/train/{job['job_id']}").json()
        assert first["status"] == "cancelled", first
        ready = again.wait_ready(120)  # an empty store again: the default model trains anew
        assert again.post("/predict", json=ROW).json()["model_version"] == ready["model_version"]
    finally:
        assert again.stop() == 0, again.output()
