"""Crash safety of the store: kill -9 mid-write, corrupt files on disk, and a registry
database that is locked, full or unreadable. Real processes, real files, real SQLite.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from service.store import REGISTRY_FILE, ModelStore

from .server import start_server

ROW = {"instances": [[5.0, 3.0]]}


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def _half_written(store: Path) -> list[Path]:
    return [p for p in store.glob(".tmp-*") if (p / "weights.npz").exists()]


def test_kill_9_while_a_model_is_written(fresh_store: Path, tmp_path: Path) -> None:
    env = {"BACKPROP_TEST_WRITE_DELAY_SECONDS": "120"}
    server = start_server(fresh_store, tmp_path, env=env)
    versions = {v["version"] for v in server.get("/models").json()}
    active = server.get("/model").json()["version"]
    job = server.post("/train", headers=server.auth, json={"max_epochs": 5, "activate": True})
    assert job.status_code == 202
    (partial,) = _wait(lambda: _half_written(fresh_store), 60, "the write never started")
    assert not (partial / "manifest.json").exists()
    half = partial.name.removeprefix(".tmp-")
    os.killpg(server.proc.pid, signal.SIGKILL)  # the server and the trainer writing
    server.proc.wait(10)
    _wait(lambda: not _pids_of(fresh_store), 10, "the trainer survived kill -9")

    store = ModelStore(fresh_store)  # the store still opens
    try:
        assert {r.version for r in store.registry.versions()} == versions
        assert store.sync() == []
        assert store.registry.active_version() == active
    finally:
        store.close()

    again = start_server(fresh_store, tmp_path)
    try:
        assert again.get("/model").json()["version"] == active
        assert {v["version"] for v in again.get("/models").json()} == versions
        assert again.get(f"/models/{half}").status_code == 404
        assert again.post(f"/predict?version={half}", json=ROW).status_code == 404
        assert again.get(f"/models/.tmp-{half}").status_code == 404
        done = again.post("/train?wait=true", headers=again.auth, json={"max_epochs": 5})
        assert done.status_code == 201 and done.json()["status"] == "succeeded", done.text
        new = done.json()["result"]["model_version"]
        assert again.post("/predict", json=ROW).json()["model_version"] == new
        # The killed job's lease ran out: it is tried again (a new attempt, a new
        # version id) or failed with the reason, never left running.
        killed = _wait(
            lambda: (
                (j := again.get(f"/train/{job.json()['job_id']}").json())["status"]
                in {"failed", "succeeded"}
                and j
            ),
            60,
            "the killed job never ended",
        )
        if killed["status"] == "failed":
            assert killed["error"]
        else:
            assert killed["attempt"] >= 2 and killed["result"]["model_version"] != half
    finally:
        assert again.stop() == 0, again.output()


def _pids_of(store: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"service.trainer" in cmdline and str(store).encode() in cmdline:
                found.append(int(entry.name))
    return found


def _corrupt(folder: Path, what: str) -> None:
    if what == "weights-truncated":
        weights = folder / "weights.npz"
        weights.write_bytes(weights.read_bytes()[:-20])
    elif what == "weights-bitflip":
        weights = folder / "weights.npz"
        data = bytearray(weights.read_bytes())
        data[len(data) // 2] ^= 0x01
        weights.write_bytes(bytes(data))
    elif what == "manifest-garbage":
        (folder / "manifest.json").write_text('{"format": ')
    elif what == "manifest-missing":
        (folder / "manifest.json").unlink()


@pytest.mark.parametrize(
    "what", ["weights-truncated", "weights-bitflip", "manifest-garbage", "manifest-missing"]
)
def test_a_corrupt_active_model_is_refused_at_restart(
    fresh_store: Path, tmp_path: Path, what: str
) -> None:
    store = ModelStore(fresh_store)
    active = store.registry.active_version()
    store.close()
    assert active is not None
    _corrupt(fresh_store / active, what)

    server = start_server(fresh_store, tmp_path, ready=False)
    try:
        log = server.wait_for_log("the active version cannot be served", timeout=30)
        assert f"version {active}" in log and "failed verification" in log
        ready = server.get("/health/ready")
        assert ready.status_code == 503
        assert active in ready.json()["reason"] and "verification" in ready.json()["reason"]
        answer = server.post("/predict", json=ROW)
        assert answer.status_code == 503
        assert server.get("/model").status_code == 503
        assert server.post(f"/predict?version={active}", json=ROW).status_code == 503
        v2 = f"/v2/models/iris-net/versions/{active}/ready"
        assert server.get(v2).status_code == 503
        listed = {v["version"]: v for v in server.get("/models").json()}
        assert listed[active]["status"] == "invalid" and listed[active]["reason"]
        refused = server.post(f"/models/{active}/activate", headers=server.auth)
        assert refused.status_code == 409
        # Training a new version brings the service back, without the corrupt one.
        done = server.post("/train?wait=true", headers=server.auth, json={"max_epochs": 5})
        assert done.status_code == 201, done.text
        server.wait_ready(30)
        assert server.post("/predict", json=ROW).json()["model_version"] != active
    finally:
        assert server.stop() == 0, server.output()


# -- the registry database ---------------------------------------------------------


def test_a_locked_registry_is_a_clear_503_within_a_bound(fresh_store: Path, tmp_path: Path) -> None:
    server = start_server(fresh_store, tmp_path)
    holder = sqlite3.connect(fresh_store / REGISTRY_FILE, timeout=1, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        answer = server.post("/train", headers=server.auth, json={"max_epochs": 5})
        took = time.monotonic() - started
        assert answer.status_code == 503, answer.text
        assert "locked" in answer.json()["detail"] and answer.headers["retry-after"]
        assert took < 30, took
        version = server.get("/model").json()["version"]
        activate = server.post(f"/models/{version}/activate", headers=server.auth)
        assert activate.status_code == 503
        # Reads and predictions go on meanwhile.
        assert server.get("/models").status_code == 200
        assert server.post("/predict", json=ROW).status_code == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    try:
        assert server.post("/train", headers=server.auth, json={"max_epochs": 5}).status_code == 202
        assert "the model registry is locked" in server.output()
    finally:
        assert server.stop() == 0, server.output()


def _wide_table(rows: int, columns: int) -> dict[str, object]:
    names = [f"f{i}" for i in range(columns)]
    data = [[round((r * 7 + c) % 97 / 9.7, 6) for c in range(columns)] for r in range(rows)]
    return {"feature_names": names, "rows": data, "labels": ["a", "b"] * (rows // 2)}


def test_a_full_registry_is_a_clear_503_then_recovers(fresh_store: Path, tmp_path: Path) -> None:
    server = start_server(fresh_store, tmp_path)
    try:
        biggest = max(p.stat().st_size for p in [*fresh_store.glob("registry*"), server.log])
        limit = biggest + 2 * 1024 * 1024
        # A file-size limit on the running server: the database cannot grow past it.
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        table = _wide_table(60_000, 10)  # about 5 MB of inline data
        started = time.monotonic()
        answer = server.post("/train", headers=server.auth, json={"data": table})
        assert answer.status_code == 503, answer.text[:300]
        # EFBIG from the limit is SQLite's "disk I/O error"; a full disk is "disk is full".
        assert "cannot be written" in answer.json()["detail"]
        assert time.monotonic() - started < 30
        assert server.post("/predict", json=ROW).status_code == 200
        assert server.get("/models").status_code == 200
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, unlimited)
        small = server.post("/train", headers=server.auth, json={"max_epochs": 5})
        assert small.status_code == 202, small.text
    finally:
        assert server.stop() == 0, server.output()


@pytest.mark.parametrize("damage", ["garbage", "directory"])
def test_an_unreadable_registry_stops_the_server_with_one_clear_line(
    fresh_store: Path, tmp_path: Path, damage: str
) -> None:
    registry = fresh_store / REGISTRY_FILE
    for path in fresh_store.glob(REGISTRY_FILE + "*"):
        path.unlink()
    if damage == "garbage":
        registry.write_bytes(b"this is not an SQLite database\n" * 200)
    else:
        registry.mkdir()
    server = start_server(fresh_store, tmp_path, ready=False)
    try:
        code = server.proc.wait(60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server hung on a bad registry:\n{server.output()}")
    assert code != 0
    lines = [
        line for line in server.output().splitlines() if "cannot open the model registry" in line
    ]
    assert len(lines) == 1 and str(registry) in lines[0], server.output()
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/health/live", timeout=2)
