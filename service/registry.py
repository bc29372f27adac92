"""The registry: which versions exist, which one is active, and the training jobs.

``Registry`` is the interface the rest of the service uses; ``SQLiteRegistry`` is
the embedded implementation (one file beside the version folders, WAL mode, safe
for several worker processes). A PostgreSQL registry for several hosts implements
the same protocol: no SQL leaves this module.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

JOB_ACTIVE = ("queued", "running")
JOB_FINISHED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class VersionRecord:
    """One stored version as the registry knows it."""

    version: str
    created_at: str
    summary: dict[str, Any]
    status: str  # "ok" or "invalid"
    reason: str | None


@dataclass(frozen=True)
class JobRecord:
    """One training job."""

    job_id: str
    status: str
    config: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: dict[str, Any] | None
    history: list[dict[str, Any]]
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    owner_pid: int | None
    heartbeat_at: float | None


class QueueFullError(Exception):
    """The queue of training jobs holds as many as it may."""


class JobFinishedError(Exception):
    """The job has already finished; it cannot be cancelled."""


class Registry(Protocol):
    """What the service needs from a registry, whatever database is behind it."""

    def add_version(self, version: str, created_at: str, summary: dict[str, Any]) -> None: ...
    def versions(self) -> list[VersionRecord]: ...
    def version(self, version: str) -> VersionRecord | None: ...
    def mark_invalid(self, version: str, reason: str) -> None: ...
    def active_version(self) -> str | None: ...
    def set_active(self, version: str) -> None: ...
    def create_job(
        self, job_id: str, config: dict[str, Any], data: bytes | None, now: str, max_queued: int
    ) -> None: ...
    def enqueue_if_empty(self, job_id: str, config: dict[str, Any], now: str) -> bool: ...
    def claim_job(self, owner_pid: int, now: str, clock: float) -> JobRecord | None: ...
    def job(self, job_id: str) -> JobRecord | None: ...
    def jobs(self, limit: int) -> list[JobRecord]: ...
    def job_counts(self) -> dict[str, int]: ...
    def job_data(self, job_id: str) -> bytes | None: ...
    def heartbeat(self, job_id: str, clock: float) -> None: ...
    def update_progress(
        self, job_id: str, progress: dict[str, Any], history: list[dict[str, Any]], clock: float
    ) -> bool: ...
    def finish_job(
        self,
        job_id: str,
        status: str,
        now: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool: ...
    def request_cancel(self, job_id: str, now: str) -> JobRecord: ...
    def fail_stale_jobs(
        self, now: str, clock: float, stale_seconds: float, alive: Callable[[int], bool]
    ) -> list[str]: ...
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    version     TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    summary     TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'ok',
    reason      TEXT
);
CREATE TABLE IF NOT EXISTS state (
    key   TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id           TEXT UNIQUE NOT NULL,
    status           TEXT NOT NULL,
    config           TEXT NOT NULL,
    data             BLOB,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    progress         TEXT,
    history          TEXT NOT NULL DEFAULT '[]',
    result           TEXT,
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    owner_pid        INTEGER,
    heartbeat_at     REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
"""

_JOB_COLUMNS = (
    "job_id, status, config, created_at, started_at, finished_at, progress, history, "
    "result, error, cancel_requested, owner_pid, heartbeat_at"
)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _job(row: tuple[Any, ...]) -> JobRecord:
    return JobRecord(
        job_id=row[0],
        status=row[1],
        config=json.loads(row[2]),
        created_at=row[3],
        started_at=row[4],
        finished_at=row[5],
        progress=_loads(row[6]),
        history=json.loads(row[7]),
        result=_loads(row[8]),
        error=row[9],
        cancel_requested=bool(row[10]),
        owner_pid=row[11],
        heartbeat_at=row[12],
    )


class SQLiteRegistry:
    """The registry in one SQLite file; every method is one short transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._write() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once so concurrent writers queue up."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite already rolled back e.g. on SQLITE_FULL
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- versions -------------------------------------------------------------

    def add_version(self, version: str, created_at: str, summary: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO versions (version, created_at, summary) VALUES (?, ?, ?)",
                (version, created_at, json.dumps(summary)),
            )

    def versions(self) -> list[VersionRecord]:
        rows = self._read(
            "SELECT version, created_at, summary, status, reason FROM versions "
            "ORDER BY created_at DESC, version DESC"
        )
        return [VersionRecord(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def version(self, version: str) -> VersionRecord | None:
        rows = self._read(
            "SELECT version, created_at, summary, status, reason FROM versions WHERE version = ?",
            (version,),
        )
        if not rows:
            return None
        name, created_at, summary, status, reason = rows[0]
        return VersionRecord(name, created_at, json.loads(summary), status, reason)

    def mark_invalid(self, version: str, reason: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE versions SET status = 'invalid', reason = ? WHERE version = ?",
                (reason, version),
            )

    def active_version(self) -> str | None:
        rows = self._read("SELECT value FROM state WHERE key = 'active_version'")
        return rows[0][0] if rows else None

    def set_active(self, version: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO state (key, value) VALUES ('active_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (version,),
            )

    # -- jobs -----------------------------------------------------------------

    def create_job(
        self, job_id: str, config: dict[str, Any], data: bytes | None, now: str, max_queued: int
    ) -> None:
        with self._write() as db:
            (queued,) = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()
            if queued >= max_queued:
                raise QueueFullError(f"{queued} jobs are queued already (the most is {max_queued})")
            db.execute(
                "INSERT INTO jobs (job_id, status, config, data, created_at) "
                "VALUES (?, 'queued', ?, ?, ?)",
                (job_id, json.dumps(config), data, now),
            )

    def enqueue_if_empty(self, job_id: str, config: dict[str, Any], now: str) -> bool:
        with self._write() as db:
            (versions,) = db.execute("SELECT COUNT(*) FROM versions").fetchone()
            (pending,) = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')"
            ).fetchone()
            if versions or pending:
                return False
            db.execute(
                "INSERT INTO jobs (job_id, status, config, created_at) VALUES (?, 'queued', ?, ?)",
                (job_id, json.dumps(config), now),
            )
            return True

    def claim_job(self, owner_pid: int, now: str, clock: float) -> JobRecord | None:
        with self._write() as db:
            if db.execute("SELECT 1 FROM jobs WHERE status = 'running' LIMIT 1").fetchone():
                return None
            row = db.execute(
                "SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, owner_pid = ?, "
                "heartbeat_at = ? WHERE job_id = ?",
                (now, owner_pid, clock, row[0]),
            )
            job = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", row).fetchone()
        return _job(job)

    def job(self, job_id: str) -> JobRecord | None:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def jobs(self, limit: int) -> list[JobRecord]:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ?", (limit,))
        return [_job(r) for r in rows]

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each status (for the metrics, read at scrape time)."""
        return dict(self._read("SELECT status, COUNT(*) FROM jobs GROUP BY status"))

    def job_data(self, job_id: str) -> bytes | None:
        rows = self._read("SELECT data FROM jobs WHERE job_id = ?", (job_id,))
        return rows[0][0] if rows else None

    def heartbeat(self, job_id: str, clock: float) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET heartbeat_at = ? WHERE job_id = ? AND status = 'running'",
                (clock, job_id),
            )

    def update_progress(
        self, job_id: str, progress: dict[str, Any], history: list[dict[str, Any]], clock: float
    ) -> bool:
        """Record progress; answer whether a cancel was asked for."""
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET progress = ?, history = ?, heartbeat_at = ? "
                "WHERE job_id = ? AND status = 'running'",
                (json.dumps(progress), json.dumps(history), clock, job_id),
            )
            row = db.execute(
                "SELECT cancel_requested FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return bool(row and row[0])

    def finish_job(
        self,
        job_id: str,
        status: str,
        now: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Move an unfinished job to ``status``; False when it had finished already."""
        assert status in JOB_FINISHED
        with self._write() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ?, data = NULL "
                "WHERE job_id = ? AND status IN ('queued', 'running')",
                (status, now, None if result is None else json.dumps(result), error, job_id),
            )
            return cursor.rowcount == 1

    def request_cancel(self, job_id: str, now: str) -> JobRecord:
        with self._write() as db:
            row = db.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            if row[0] in JOB_FINISHED:
                raise JobFinishedError(f"job {job_id} has already {row[0]}")
            if row[0] == "queued":
                db.execute(
                    "UPDATE jobs SET status = 'cancelled', finished_at = ?, data = NULL, "
                    "error = 'cancelled before it started' WHERE job_id = ?",
                    (now, job_id),
                )
            else:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE job_id = ?", (job_id,))
            job = db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
            return _job(job.fetchone())

    def fail_stale_jobs(
        self, now: str, clock: float, stale_seconds: float, alive: Callable[[int], bool]
    ) -> list[str]:
        """Fail running jobs whose owner died or whose heartbeat stopped."""
        with self._write() as db:
            rows = db.execute(
                "SELECT job_id, owner_pid, heartbeat_at FROM jobs WHERE status = 'running'"
            ).fetchall()
            stale = [
                job_id
                for job_id, pid, beat in rows
                if (pid is not None and not alive(pid)) or (beat or 0) < clock - stale_seconds
            ]
            for job_id in stale:
                db.execute(
                    "UPDATE jobs SET status = 'failed', finished_at = ?, data = NULL, "
                    "error = 'the process running the job died' WHERE job_id = ?",
                    (now, job_id),
                )
        return stale
