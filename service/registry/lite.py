"""The single-host registry on Python's ``sqlite3`` alone: no SQLAlchemy to import at start.

``SQLiteRegistry`` reads and writes the tables the Alembic migrations build, with
the SQL ``SQLRegistry`` runs on SQLite, so either opens a file the other wrote.
A file at the head revision is opened without SQLAlchemy or Alembic; a new or
older one is first migrated by ``migrate.upgrade``, which imports both.

Connections are pooled (each used by one thread at a time), in WAL mode. A read
is one statement; a write is one ``BEGIN IMMEDIATE`` transaction, so the writers
of several worker processes queue up for the file's lock, for at most the busy
timeout, instead of failing when one of them upgrades a read.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .filelock import sqlite_file_lock
from .records import (
    JOB_ACTIVE,
    JOB_FINISHED,
    ActivePointer,
    ExpiredLease,
    JobRecord,
    LeaseLostError,
    QueueFullError,
    VersionRecord,
)
from .rows import (
    EXPIRY_COLUMNS,
    HEAD_REVISION,
    JOB_COLUMNS,
    VERSION_COLUMNS,
    cancel_values,
    dumps,
    job_record,
    lease_expiry,
    pid_of,
    utc_now,
    version_record,
)

BUSY_TIMEOUT_SECONDS = 10.0
# Connections kept open between uses (as many as SQLAlchemy's pool keeps); more are
# opened while more threads need one at once, and closed when they are done.
MAX_IDLE = 5
# The database's clock in seconds since the epoch (leases are judged by it).
NOW = "((julianday('now') - 2440587.5) * 86400.0)"

_JOB = ", ".join(JOB_COLUMNS)
_VERSION = ", ".join(VERSION_COLUMNS)
_FENCE = "job_id = ? AND status = 'running' AND attempt = ?"
_ACTIVE = f"status IN ({', '.join('?' for _ in JOB_ACTIVE)})"  # bound to JOB_ACTIVE
_PLAIN_FILE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<database>[^?]+)")


def sqlite_file(url: str) -> str | None:
    """The file a plain ``sqlite:///path`` URL names, as SQLAlchemy reads it.

    None for any other URL: PostgreSQL, a database in memory, or query options
    (those stay with ``SQLRegistry``).
    """
    found = _PLAIN_FILE.fullmatch(url)
    if found is None:
        return None
    database = unquote(found["database"])
    return None if database == ":memory:" else database


def _assignments(values: dict[str, Any]) -> str:
    """``a = ?, b = ?`` for the column names of ``values`` (names from this module only)."""
    return ", ".join(f"{name} = ?" for name in values)


class SQLiteRegistry:
    """The ``Registry`` protocol on one SQLite file, with the standard library only.

    Opening creates the file (and its folder) and migrates it when it is not at
    the head revision.
    """

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self._named = os.fspath(path)
        self.path = os.path.abspath(self._named)
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._epoch = 0  # bumped by close(): connections in use then are closed when returned
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            with sqlite_file_lock(self.path):  # servers started together: one migrates
                if self._stored_revision() != HEAD_REVISION:
                    self._migrate()
        except BaseException:
            self.close()
            raise

    @property
    def url(self) -> str:
        """The file's URL, rendered as SQLAlchemy renders it (for logs and messages)."""
        return "sqlite:///" + quote(self._named, safe=" +/")

    # -- connections ----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # autocommit: the transactions are begun below
            check_same_thread=False,  # pooled: one thread at a time, not always the same
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        except BaseException:
            connection.close()
            raise
        return connection

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of the pool's (or a new one), returned to it afterwards."""
        with self._lock:
            epoch = self._epoch
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._connect()
        try:
            yield connection
        finally:
            keep = not connection.in_transaction  # else a failed rollback: drop it
            with self._lock:
                keep = keep and epoch == self._epoch and len(self._idle) < MAX_IDLE
                if keep:
                    self._idle.append(connection)
            if not keep:
                connection.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the file's write lock from its start."""
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the connection is dropped, which ends the transaction
                raise

    def _rows(self, sql: str, *params: Any) -> list[Any]:
        """One read statement's rows (all fetched, so no read stays open)."""
        with self._connection() as db:
            return db.execute(sql, params).fetchall()

    def _first(self, sql: str, *params: Any) -> Any:
        rows = self._rows(sql, *params)
        return rows[0] if rows else None

    def _stored_revision(self) -> str | None:
        """The schema revision recorded in the file (None: never migrated)."""
        if not self._rows(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ):
            return None
        found = self._first("SELECT version_num FROM alembic_version")
        return None if found is None else str(found[0])

    def _migrate(self) -> None:
        """Bring the file to the head revision with Alembic (which imports SQLAlchemy)."""
        from . import migrate
        from .sql import engine_for

        engine = engine_for("sqlite:///" + quote(self.path, safe=" +/"))
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()

    def close(self) -> None:
        """Close the pool's connections (the registry opens new ones if used again)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._epoch += 1
        for connection in idle:
            connection.close()

    def ping(self) -> None:
        self._rows("SELECT 1")

    def clock(self) -> float:
        """The database's clock, in seconds since the epoch."""
        return float(self._rows(f"SELECT {NOW}")[0][0])

    # -- versions -------------------------------------------------------------

    def add_version(self, version: str, created_at: str, summary: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO versions (version, created_at, summary) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (version, created_at, dumps(summary)),
            )

    def versions(self) -> list[VersionRecord]:
        query = f"SELECT {_VERSION} FROM versions ORDER BY created_at DESC, version DESC"
        return [version_record(row) for row in self._rows(query)]

    def version(self, version: str) -> VersionRecord | None:
        row = self._first(f"SELECT {_VERSION} FROM versions WHERE version = ?", version)
        return None if row is None else version_record(row)

    def mark_invalid(self, version: str, reason: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE versions SET status = 'invalid', reason = ? WHERE version = ?",
                (reason, version),
            )

    def active_version(self) -> str | None:
        return self.active_pointer().version

    def active_pointer(self) -> ActivePointer:
        """The active version and its generation (one indexed read)."""
        row = self._first("SELECT version, generation FROM active_pointer WHERE id = 1")
        return ActivePointer(None, 0) if row is None else ActivePointer(row[0], int(row[1]))

    def _activate(self, db: sqlite3.Connection, version: str, now: str) -> int:
        rows = db.execute(
            "UPDATE active_pointer SET version = ?, generation = generation + 1, changed_at = ?"
            " WHERE id = 1 RETURNING generation",
            (version, now),
        ).fetchall()
        if not rows:  # the migrations write this row; only a damaged file lacks it
            raise sqlite3.DatabaseError("the registry has no active_pointer row")
        return int(rows[0][0])

    def set_active(self, version: str, now: str = "") -> int:
        """Point at ``version``; answer the new generation number."""
        with self._write() as db:
            return self._activate(db, version, now or utc_now())

    # -- jobs: queue ----------------------------------------------------------

    def create_job(
        self, job_id: str, config: dict[str, Any], data: bytes | None, now: str, max_queued: int
    ) -> None:
        with self._write() as db:
            [(queued,)] = db.execute("SELECT count(*) FROM jobs WHERE status = 'queued'")
            if queued >= max_queued:
                raise QueueFullError(f"{queued} jobs are queued already (the most is {max_queued})")
            db.execute(
                "INSERT INTO jobs (job_id, status, config, data, created_at)"
                " VALUES (?, 'queued', ?, ?, ?)",
                (job_id, dumps(config), data, now),
            )

    def enqueue_if_empty(self, job_id: str, config: dict[str, Any], now: str) -> bool:
        with self._write() as db:
            [(known,)] = db.execute("SELECT count(*) FROM versions")
            [(pending,)] = db.execute(f"SELECT count(*) FROM jobs WHERE {_ACTIVE}", JOB_ACTIVE)
            if known or pending:
                return False
            db.execute(
                "INSERT INTO jobs (job_id, status, config, created_at) VALUES (?, 'queued', ?, ?)",
                (job_id, dumps(config), now),
            )
            return True

    def claim_job(
        self, owner: str, now: str, lease_seconds: float, max_running: int = 1
    ) -> JobRecord | None:
        """Lease the oldest queued job to ``owner`` (its attempt bumped), within ``max_running``.

        The transaction holds the file's write lock: no two claims see one job queued.
        """
        with self._write() as db:
            [(running,)] = db.execute("SELECT count(*) FROM jobs WHERE status = 'running'")
            if running >= max_running:
                return None
            queued = db.execute(
                "SELECT job_id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1"
            ).fetchall()
            if not queued:
                return None
            [row] = db.execute(
                "UPDATE jobs SET status = 'running', started_at = ?, owner = ?, owner_pid = ?,"
                f" attempt = attempt + 1, heartbeat_at = {NOW}, lease_expires_at = {NOW} + ?"
                f" WHERE job_id = ? RETURNING {_JOB}",
                (now, owner, pid_of(owner), lease_seconds, queued[0][0]),
            ).fetchall()
        return job_record(row)

    def heartbeat(self, job_id: str, attempt: int, lease_seconds: float) -> bool:
        """Renew the lease of this attempt; False when the job is no longer this attempt's."""
        with self._write() as db:
            done = db.execute(
                f"UPDATE jobs SET heartbeat_at = {NOW}, lease_expires_at = {NOW} + ?"
                f" WHERE {_FENCE}",
                (lease_seconds, job_id, attempt),
            )
            return done.rowcount == 1

    def update_progress(
        self,
        job_id: str,
        attempt: int,
        progress: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> bool:
        """Record this attempt's progress; True: stop (cancel asked for, or the job moved on)."""
        with self._write() as db:
            rows = db.execute(
                f"UPDATE jobs SET progress = ?, history = ? WHERE {_FENCE}"
                " RETURNING cancel_requested",
                (dumps(progress), dumps(history), job_id, attempt),
            ).fetchall()
        return not rows or bool(rows[0][0])

    def finish_job(
        self,
        job_id: str,
        status: str,
        now: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        attempt: int | None = None,
    ) -> bool:
        """Finish an unfinished job (with ``attempt``: only that running attempt); False if not."""
        assert status in JOB_FINISHED
        where, params = (
            (f"job_id = ? AND {_ACTIVE}", (job_id, *JOB_ACTIVE))
            if attempt is None
            else (_FENCE, (job_id, attempt))
        )
        with self._write() as db:
            done = db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ?, data = NULL,"
                f" lease_expires_at = NULL WHERE {where}",
                (status, now, dumps(result), error, *params),
            )
            return done.rowcount == 1

    def complete_job(
        self,
        job_id: str,
        attempt: int,
        version: str,
        created_at: str,
        summary: dict[str, Any],
        result: dict[str, Any],
        progress: dict[str, Any],
        history: list[dict[str, Any]],
        activate: bool,
        now: str,
    ) -> None:
        """Register, succeed and maybe activate in one transaction; LeaseLostError if not held."""
        with self._write() as db:
            held = db.execute(f"SELECT job_id FROM jobs WHERE {_FENCE}", (job_id, attempt))
            if not held.fetchall():
                raise LeaseLostError(f"job {job_id} is no longer held by attempt {attempt}")
            try:
                db.execute(
                    "INSERT INTO versions (version, created_at, summary, job_id, attempt)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (version, created_at, dumps(summary), job_id, attempt),
                )
            except sqlite3.IntegrityError as exc:
                raise LeaseLostError(f"job {job_id} has registered a version already") from exc
            if activate:
                self._activate(db, version, now)
            db.execute(
                "UPDATE jobs SET status = 'succeeded', finished_at = ?, result = ?, progress = ?,"
                " history = ?, data = NULL, lease_expires_at = NULL WHERE job_id = ?",
                (now, dumps(result), dumps(progress), dumps(history), job_id),
            )

    def expire_leases(self, now: str, max_attempts: int) -> list[ExpiredLease]:
        """Re-queue, fail or cancel the running jobs whose lease ran out by the file's clock."""
        with self._write() as db:
            rows = db.execute(
                f"SELECT {', '.join(EXPIRY_COLUMNS)} FROM jobs WHERE status = 'running'"
                f" AND lease_expires_at IS NOT NULL AND lease_expires_at < {NOW}"
            ).fetchall()
            expired = []
            for row in rows:
                lease, values = lease_expiry(row, now, max_attempts)
                db.execute(
                    f"UPDATE jobs SET {_assignments(values)} WHERE job_id = ?",
                    (*values.values(), lease.job_id),
                )
                expired.append(lease)
        return expired

    def release_lease(self, job_id: str, attempt: int) -> bool:
        """End this attempt's lease now: the next ``expire_leases`` re-queues (or fails) it."""
        with self._write() as db:
            done = db.execute(
                f"UPDATE jobs SET lease_expires_at = 0.0 WHERE {_FENCE}", (job_id, attempt)
            )
            return done.rowcount == 1

    def fail_unleased_jobs(self, now: str) -> list[str]:
        """Fail running jobs without a lease (left by the single-host schema)."""
        with self._write() as db:
            rows = db.execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?, data = NULL, error = ?"
                " WHERE status = 'running' AND lease_expires_at IS NULL RETURNING job_id",
                (now, "the process running the job died"),
            ).fetchall()
        return [row[0] for row in rows]

    # -- jobs: reads and cancel -----------------------------------------------

    def job(self, job_id: str) -> JobRecord | None:
        row = self._first(f"SELECT {_JOB} FROM jobs WHERE job_id = ?", job_id)
        return None if row is None else job_record(row)

    def jobs(self, limit: int) -> list[JobRecord]:
        rows = self._rows(f"SELECT {_JOB} FROM jobs ORDER BY seq DESC LIMIT ?", limit)
        return [job_record(row) for row in rows]

    def job_data(self, job_id: str) -> bytes | None:
        data = self._first("SELECT data FROM jobs WHERE job_id = ?", job_id)
        return None if data is None or data[0] is None else bytes(data[0])

    def request_cancel(self, job_id: str, now: str) -> JobRecord:
        with self._write() as db:
            found = db.execute("SELECT status FROM jobs WHERE job_id = ?", (job_id,)).fetchall()
            values = cancel_values(job_id, found[0][0] if found else None, now)
            [row] = db.execute(
                f"UPDATE jobs SET {_assignments(values)} WHERE job_id = ? RETURNING {_JOB}",
                (*values.values(), job_id),
            ).fetchall()
        return job_record(row)

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        rows = self._rows("SELECT status, count(*) FROM jobs GROUP BY status")
        return {status: int(n) for status, n in rows}
