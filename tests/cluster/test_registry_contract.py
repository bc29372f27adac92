"""The Registry protocol's contract, run against SQLite (the stdlib registry) and a real
PostgreSQL (SQLAlchemy's) alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.registry import (
    JobFinishedError,
    LeaseLostError,
    PointerWatcher,
    QueueFullError,
    Registry,
    SQLiteRegistry,
    engine_for,
    migrate,
    open_registry,
)
from service.registry.sql import open_sql_registry

from .postgres import Postgres


@pytest.fixture(params=["sqlite", "sqlite-sqlalchemy", "postgresql"])
def registry(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: Postgres
) -> Iterator[Registry]:
    if request.param == "sqlite":
        opened = open_registry(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
        assert isinstance(opened, SQLiteRegistry)
    elif request.param == "sqlite-sqlalchemy":  # the SQLite path before the stdlib registry
        opened = open_sql_registry(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    else:
        url = postgres_server.create_database(f"contract_{tmp_path.name}".lower()[:60])
        migrate.upgrade(engine_for(url))
        opened = open_registry(url)
    yield opened
    opened.close()


def _complete(registry: Registry, job_id: str, attempt: int, version: str) -> None:
    registry.complete_job(
        job_id,
        attempt,
        version,
        "2026-01-01T00:00:00Z",
        {"sha256": "x"},
        {"model_version": version},
        {"epoch": 1},
        [{"epoch": 1, "loss": 0.5}],
        activate=True,
        now="t",
    )


def test_versions_and_the_active_pointer_with_its_generation(registry: Registry) -> None:
    assert registry.versions() == [] and registry.active_version() is None
    assert registry.active_pointer().generation == 0
    registry.add_version("v1", "2026-01-01T00:00:00Z", {"a": 1})
    registry.add_version("v1", "2026-01-02T00:00:00Z", {"a": 2})  # never overwritten
    registry.add_version("v2", "2026-01-02T00:00:00Z", {"a": 3})
    assert [r.version for r in registry.versions()] == ["v2", "v1"]
    assert registry.version("v1") is not None and registry.version("v1").summary == {"a": 1}  # type: ignore[union-attr]
    assert registry.version("nope") is None
    assert registry.set_active("v1") == 1
    assert registry.set_active("v2") == 2
    assert registry.set_active("v2") == 3  # every activation bumps, even of the same version
    pointer = registry.active_pointer()
    assert (pointer.version, pointer.generation) == ("v2", 3)
    registry.mark_invalid("v1", "bad weights")
    invalid = registry.version("v1")
    assert invalid is not None and (invalid.status, invalid.reason) == ("invalid", "bad weights")


def test_queue_limit_claim_order_and_cancel(registry: Registry) -> None:
    registry.create_job("a", {"k": 1}, None, "t0", max_queued=2)
    registry.create_job("b", {"k": 2}, b"data", "t1", max_queued=2)
    with pytest.raises(QueueFullError):
        registry.create_job("c", {}, None, "t2", max_queued=2)
    first = registry.claim_job("h:1:0", "t3", lease_seconds=30)
    assert first is not None and (first.job_id, first.attempt, first.owner) == ("a", 1, "h:1:0")
    assert first.lease_expires_at is not None and first.heartbeat_at is not None
    assert first.lease_expires_at - first.heartbeat_at == pytest.approx(30, abs=0.5)
    assert registry.claim_job("h:2:0", "t4", lease_seconds=30) is None  # one running at most
    second = registry.claim_job("h:2:0", "t4", lease_seconds=30, max_running=2)
    assert second is not None and second.job_id == "b"
    assert registry.job_data("b") == b"data"
    assert registry.request_cancel("b", "t5").cancel_requested
    assert registry.update_progress("b", 1, {"epoch": 1}, [])  # the trainer learns to stop
    assert registry.finish_job("b", "cancelled", "t6", error="cancelled on request")
    assert registry.job_data("b") is None
    with pytest.raises(JobFinishedError):
        registry.request_cancel("b", "t7")
    with pytest.raises(KeyError):
        registry.request_cancel("nope", "t7")
    assert [j.job_id for j in registry.jobs(10)] == ["b", "a"]
    assert registry.job_counts() == {"running": 1, "cancelled": 1}


def test_enqueue_if_empty_only_once(registry: Registry) -> None:
    assert registry.enqueue_if_empty("first", {}, "t0")
    assert not registry.enqueue_if_empty("second", {}, "t1")


def test_an_expired_lease_requeues_then_fails_after_the_last_attempt(
    registry: Registry,
) -> None:
    registry.create_job("j", {}, None, "t0", max_queued=5)
    for attempt in (1, 2):
        job = registry.claim_job(f"h:{attempt}:0", "t", lease_seconds=1.0)
        assert job is not None and job.attempt == attempt
        assert registry.expire_leases("t", max_attempts=2) == []  # not yet expired
        time.sleep(1.3)
        [expired] = registry.expire_leases("t", max_attempts=2)
        assert expired.attempt == attempt and expired.owner == f"h:{attempt}:0"
        assert expired.outcome == ("queued" if attempt == 1 else "failed")
    final = registry.job("j")
    assert final is not None and final.status == "failed" and "lease" in (final.error or "")


def test_a_renewed_lease_does_not_expire(registry: Registry) -> None:
    registry.create_job("j", {}, None, "t0", max_queued=5)
    job = registry.claim_job("h:1:0", "t", lease_seconds=2.0)
    assert job is not None
    for _ in range(3):
        time.sleep(0.8)
        assert registry.heartbeat("j", 1, lease_seconds=2.0)
        assert registry.expire_leases("t", max_attempts=1) == []


def test_a_late_duplicate_cannot_register_a_second_version(registry: Registry) -> None:
    registry.create_job("j", {}, None, "t0", max_queued=5)
    registry.claim_job("slow:1:0", "t", lease_seconds=0.05)
    time.sleep(0.3)
    registry.expire_leases("t", max_attempts=3)
    retry = registry.claim_job("fast:2:0", "t", lease_seconds=30)
    assert retry is not None and retry.attempt == 2
    assert not registry.heartbeat("j", 1, lease_seconds=30)  # the old attempt learns it lost
    assert registry.update_progress("j", 1, {"epoch": 9}, [])  # ... and is told to stop
    assert not registry.finish_job("j", "failed", "t", error="late", attempt=1)
    _complete(registry, "j", 2, "v-fast")
    with pytest.raises(LeaseLostError):
        _complete(registry, "j", 1, "v-slow")  # the first execution finishes late
    assert [r.version for r in registry.versions()] == ["v-fast"]
    assert registry.version("v-fast").job_id == "j"  # type: ignore[union-attr]
    job = registry.job("j")
    assert job is not None and job.status == "succeeded" and job.attempt == 2
    assert registry.active_version() == "v-fast"


def test_a_refused_completion_changes_nothing(registry: Registry) -> None:
    registry.add_version("v-taken", "2026-01-01T00:00:00Z", {})
    registry.create_job("j", {}, None, "t0", max_queued=5)
    registry.claim_job("h:1:0", "t", lease_seconds=30)
    with pytest.raises(LeaseLostError):
        _complete(registry, "j", 1, "v-taken")  # the version's name is taken: rolled back
    job = registry.job("j")
    assert job is not None and job.status == "running" and job.result is None
    assert registry.active_pointer().generation == 0
    assert registry.version("v-taken").job_id is None  # type: ignore[union-attr]


def test_a_released_lease_is_retried_at_once(registry: Registry) -> None:
    registry.create_job("j", {}, None, "t0", max_queued=5)
    registry.claim_job("h:1:0", "t", lease_seconds=30)
    assert registry.release_lease("j", 1)
    [expired] = registry.expire_leases("t", max_attempts=3)
    assert expired.outcome == "queued"


def test_concurrent_claims_never_run_more_than_the_limit(registry: Registry) -> None:
    for i in range(6):
        registry.create_job(f"j{i}", {}, None, "t", max_queued=10)
    claimed: list[str] = []
    lock = threading.Lock()

    def claim(owner: str) -> None:
        for _ in range(5):
            job = registry.claim_job(owner, "t", lease_seconds=30, max_running=2)
            if job is not None:
                with lock:
                    claimed.append(job.job_id)

    threads = [threading.Thread(target=claim, args=(f"h:{n}:0",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 2 and len(set(claimed)) == 2


def test_the_watcher_sees_every_activation(registry: Registry) -> None:
    watcher = PointerWatcher(registry, poll_seconds=0.2)
    try:
        registry.add_version("v1", "t", {})
        generation = registry.set_active("v1")
        pointer = watcher.wait_for_change(0, timeout=10)
        assert pointer is not None and (pointer.version, pointer.generation) == ("v1", generation)
        assert watcher.reachable
    finally:
        watcher.stop()
