"""GET /train/{job_id}/events: a job's progress as server-sent events, from any worker."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from .server import Server, start_server

LONG_JOB = {"max_epochs": 100_000, "tolerance": 0, "activate": False}


@dataclass
class Event:
    event: str
    data: Any
    id: str | None


def read_events(lines: Iterator[str]) -> Iterator[Event]:
    """Parse a text/event-stream (the fields this service sends) line by line."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):  # a comment (ping)
            continue
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if "data" in fields:
            yield Event(
                fields.get("event", "message"), orjson.loads(fields["data"]), fields.get("id")
            )
        fields = {}


def collect(server: Server, job_id: str, **headers: str | bytes) -> list[Event]:
    """The whole stream of a job, until the server closes it."""
    with httpx.stream(
        "GET", f"{server.url}/train/{job_id}/events", headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(read_events(response.iter_lines()))


@pytest.fixture(scope="module")
def two_workers(seed_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store = tmp_path_factory.mktemp("events") / "models"
    shutil.copytree(seed_store, store)
    env = {"BACKPROP_EVENTS_PING_SECONDS": "0.3"}
    running = start_server(store, tmp_path_factory.mktemp("logs"), workers=2, env=env)
    yield running
    assert running.stop() == 0, running.output()  # the last test has stopped it already


@pytest.fixture(scope="module")
def finished(two_workers: Server) -> tuple[str, list[Event]]:
    """A job followed from its start to its end: its id and every event."""
    created = two_workers.post(
        "/train",
        headers=two_workers.auth,
        json={"max_epochs": 2000, "tolerance": 0, "activate": False},
    )
    assert created.status_code == 202, created.text
    job_id = created.json()["job_id"]
    return job_id, collect(two_workers, job_id)


def test_job_then_progress_then_end(two_workers: Server, finished: tuple[str, list[Event]]) -> None:
    job_id, events = finished
    kinds = [e.event for e in events]
    assert kinds[0] == "job" and kinds[-1] == "end"
    assert set(kinds[1:-1]) == {"progress"}, kinds
    first = events[0].data
    assert first["job_id"] == job_id and first["status"] in ("queued", "running")
    assert set(first) == set(two_workers.get(f"/train/{job_id}").json())
    progress = [e for e in events if e.event == "progress"]
    assert len(progress) >= 2, "a 2000-epoch job reports more than one point"
    epochs = [e.data["epoch"] for e in progress]
    assert epochs == sorted(set(epochs)) and epochs[-1] == 2000
    assert [e.id for e in progress] == [str(epoch) for epoch in epochs]
    for e in progress:
        assert set(e.data) == {"epoch", "max_epochs", "loss", "train_accuracy"}
        assert e.data["max_epochs"] == 2000 and e.data["loss"] > 0
        assert 0 <= e.data["train_accuracy"] <= 1
    already = {point["epoch"] for point in first["history"]}
    assert not already & set(epochs), "progress carries only points after the job event"
    end = events[-1].data
    assert end["status"] == "succeeded" and end["result"]["model_version"]
    assert end == two_workers.get(f"/train/{job_id}").json()
    # The stored history is thinned to at most 200 points as the job runs, so a
    # streamed point may be gone from it; the stream and the history end alike.
    assert end["history"] and end["history"][-1]["epoch"] <= 2000


def test_a_finished_job_answers_job_then_end_from_any_worker(
    two_workers: Server, finished: tuple[str, list[Event]]
) -> None:
    job_id, _ = finished
    for _ in range(6):  # new connections: both workers answer some of them
        events = collect(two_workers, job_id)
        assert [e.event for e in events] == ["job", "end"]
        assert events[0].data["status"] == events[1].data["status"] == "succeeded"


def test_last_event_id_resumes_after_that_epoch(
    two_workers: Server, finished: tuple[str, list[Event]]
) -> None:
    job_id, events = finished
    history = [p["epoch"] for p in events[-1].data["history"]]
    resume_at = history[len(history) // 2]
    resumed = collect(two_workers, job_id, **{"Last-Event-ID": str(resume_at)})
    assert resumed[0].event == "job" and resumed[-1].event == "end"
    assert [e.data["epoch"] for e in resumed[1:-1]] == [h for h in history if h > resume_at]


@pytest.mark.parametrize("value", [b"abc", "\u00b2".encode("latin-1"), b"-3", b"9" * 40])
def test_a_last_event_id_that_is_no_epoch_is_ignored(
    two_workers: Server, finished: tuple[str, list[Event]], value: bytes
) -> None:
    job_id, _ = finished
    events = collect(two_workers, job_id, **{"Last-Event-ID": value})
    assert [e.event for e in events] == ["job", "end"]


def test_an_unknown_job_is_a_404_before_any_stream(two_workers: Server) -> None:
    answer = two_workers.get("/train/job-nope/events")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert "job-nope" in answer.json()["detail"]


def test_a_client_that_leaves_ends_its_stream_on_the_server(two_workers: Server) -> None:
    created = two_workers.post("/train", headers=two_workers.auth, json=LONG_JOB)
    job_id = created.json()["job_id"]
    try:
        with httpx.stream("GET", f"{two_workers.url}/train/{job_id}/events", timeout=30) as r:
            first = next(read_events(r.iter_lines()))
            assert first.event == "job"
        # The access line is written when the handler returns: the stream has ended
        # although the job still runs.
        two_workers.wait_for_log(f"GET /train/{job_id}/events 200", timeout=10)
        assert two_workers.get(f"/train/{job_id}").json()["status"] in ("queued", "running")
    finally:
        httpx.delete(f"{two_workers.url}/train/{job_id}", headers=two_workers.auth, timeout=30)


def test_sigterm_with_an_open_stream_exits_promptly_with_0(two_workers: Server) -> None:
    """Last in this module: it stops the module's server."""
    server = two_workers
    job_id = server.post("/train", headers=server.auth, json=LONG_JOB).json()["job_id"]
    with httpx.stream("GET", f"{server.url}/train/{job_id}/events", timeout=30) as r:
        lines = r.iter_lines()
        assert next(lines) == "event: job"
        ping = next(line for line in lines if line.startswith(":"))
        assert ping == ": ping"  # every 0.3 s here, even before any progress
        server.proc.send_signal(signal.SIGTERM)
        rest = list(read_events(lines))  # the server ends the stream cleanly, no `end`
    # The stream ends without `end`, unless the job itself ended first: with two
    # workers, the one training it may cancel it on shutdown before this stream stops.
    assert {e.event for e in rest} <= {"progress", "end"}
    assert all(e.data["status"] == "cancelled" for e in rest if e.event == "end")
    assert server.proc.wait(timeout=20) == 0, server.output()
    log = server.output()
    # Not ended by uvicorn's timeout_graceful_shutdown cancelling the stream:
    assert "graceful shutdown exceeded" not in log, log
    assert f"GET /train/{job_id}/events 200" in log
