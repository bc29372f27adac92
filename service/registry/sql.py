"""The registry on SQLAlchemy Core: PostgreSQL, and SQLite where the stdlib one does not serve.

``open_registry`` hands a plain SQLite file to ``SQLiteRegistry`` (``lite.py``),
which needs no SQLAlchemy; this module serves PostgreSQL, the SQLite URLs that
one does not take (in memory, or with query options) and Alembic's engines.

Every method is one short transaction. Writes on SQLite take the write lock at
``BEGIN IMMEDIATE`` so concurrent writers queue up (WAL mode, several worker
processes on one host). On PostgreSQL the job queue is claimed with
``FOR UPDATE SKIP LOCKED`` under a transaction advisory lock (so the limit on
running jobs holds across hosts), times of leases come from the database's
clock, and an activation bumps the pointer's generation and sends ``NOTIFY``
in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Float,
    and_,
    cast,
    create_engine,
    event,
    func,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from .filelock import engine_file_lock
from .records import (
    JOB_ACTIVE,
    JOB_FINISHED,
    ActivePointer,
    ExpiredLease,
    JobRecord,
    LeaseLostError,
    QueueFullError,
    RegistryUnavailableError,
    VersionRecord,
)
from .rows import (
    ACTIVE_CHANNEL,
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
from .schema import active_pointer, jobs, versions

# pg_advisory_xact_lock's key for claiming jobs ("claim" in ASCII)
CLAIM_LOCK_KEY = 0x636C61696D

_JOB_COLUMNS = tuple(jobs.c[name] for name in JOB_COLUMNS)
_VERSION_COLUMNS = tuple(versions.c[name] for name in VERSION_COLUMNS)


def prepare_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for the write transactions."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SQLRegistry:
    """The ``Registry`` protocol on a SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._writer = engine.execution_options(immediate=True)

    @property
    def url(self) -> str:
        """The database's URL without its password (for logs and messages)."""
        url = self.engine.url
        return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self._writer.begin() as connection:
                yield connection
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc.orig, _unreachable_errors()):
                raise RegistryUnavailableError(f"the registry {self.url} is unreachable") from exc
            raise

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc.orig, _unreachable_errors()):
                raise RegistryUnavailableError(f"the registry {self.url} is unreachable") from exc
            raise

    def _now(self) -> ColumnElement[float]:
        """The database's clock in seconds since the epoch (leases are judged by it)."""
        if self.dialect == "postgresql":
            return cast(func.extract("epoch", func.statement_timestamp()), Float)
        return (func.julianday("now") - 2440587.5) * 86400.0

    def _insert(self) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(versions)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """One round trip; raises RegistryUnavailableError when the database is down."""
        with self._read() as connection:
            connection.execute(select(literal(1)))

    def clock(self) -> float:
        """The database's clock, in seconds since the epoch."""
        with self._read() as connection:
            return float(connection.execute(select(self._now())).scalar_one())

    # -- versions -------------------------------------------------------------

    def add_version(self, version: str, created_at: str, summary: dict[str, Any]) -> None:
        row = {"version": version, "created_at": created_at, "summary": json.dumps(summary)}
        with self._write() as db:
            db.execute(self._insert().values(**row).on_conflict_do_nothing())

    def versions(self) -> list[VersionRecord]:
        query = select(*_VERSION_COLUMNS).order_by(
            versions.c.created_at.desc(), versions.c.version.desc()
        )
        with self._read() as db:
            return [version_record(r) for r in db.execute(query)]

    def version(self, version: str) -> VersionRecord | None:
        query = select(*_VERSION_COLUMNS).where(versions.c.version == version)
        with self._read() as db:
            row = db.execute(query).first()
        return None if row is None else version_record(row)

    def mark_invalid(self, version: str, reason: str) -> None:
        with self._write() as db:
            db.execute(
                update(versions)
                .where(versions.c.version == version)
                .values(status="invalid", reason=reason)
            )

    def active_version(self) -> str | None:
        return self.active_pointer().version

    def active_pointer(self) -> ActivePointer:
        """The active version and its generation (one indexed read)."""
        query = select(active_pointer.c.version, active_pointer.c.generation)
        with self._read() as db:
            row = db.execute(query.where(active_pointer.c.id == 1)).first()
        return ActivePointer(None, 0) if row is None else ActivePointer(row[0], int(row[1]))

    def _activate(self, db: Connection, version: str, now: str) -> int:
        generation = db.execute(
            update(active_pointer)
            .where(active_pointer.c.id == 1)
            .values(version=version, generation=active_pointer.c.generation + 1, changed_at=now)
            .returning(active_pointer.c.generation)
        ).scalar_one()
        if self.dialect == "postgresql":  # delivered when the transaction commits
            db.execute(select(func.pg_notify(ACTIVE_CHANNEL, f"{generation} {version}")))
        return int(generation)

    def set_active(self, version: str, now: str = "") -> int:
        """Point at ``version``; answer the new generation number."""
        with self._write() as db:
            return self._activate(db, version, now or utc_now())

    # -- jobs: queue ----------------------------------------------------------

    def create_job(
        self, job_id: str, config: dict[str, Any], data: bytes | None, now: str, max_queued: int
    ) -> None:
        with self._write() as db:
            if self.dialect == "postgresql":  # the count and the insert, one at a time
                db.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
            queued = db.execute(
                select(func.count()).select_from(jobs).where(jobs.c.status == "queued")
            ).scalar_one()
            if queued >= max_queued:
                raise QueueFullError(f"{queued} jobs are queued already (the most is {max_queued})")
            db.execute(
                jobs.insert().values(
                    job_id=job_id,
                    status="queued",
                    config=json.dumps(config),
                    data=data,
                    created_at=now,
                )
            )

    def enqueue_if_empty(self, job_id: str, config: dict[str, Any], now: str) -> bool:
        with self._write() as db:
            if self.dialect == "postgresql":
                db.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
            known = db.execute(select(func.count()).select_from(versions)).scalar_one()
            pending = db.execute(
                select(func.count()).select_from(jobs).where(jobs.c.status.in_(JOB_ACTIVE))
            ).scalar_one()
            if known or pending:
                return False
            db.execute(
                jobs.insert().values(
                    job_id=job_id, status="queued", config=json.dumps(config), created_at=now
                )
            )
            return True

    def claim_job(
        self, owner: str, now: str, lease_seconds: float, max_running: int = 1
    ) -> JobRecord | None:
        """Lease the oldest queued job to ``owner`` unless ``max_running`` jobs run already.

        The claim bumps the job's attempt number; every later write of this
        execution carries it, and is refused once the job has moved on.
        """
        with self._write() as db:
            if self.dialect == "postgresql":
                db.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
            running = db.execute(
                select(func.count()).select_from(jobs).where(jobs.c.status == "running")
            ).scalar_one()
            if running >= max_running:
                return None
            job_id = db.execute(
                select(jobs.c.job_id)
                .where(jobs.c.status == "queued")
                .order_by(jobs.c.seq)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if job_id is None:
                return None
            clock = self._now()
            row = db.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(
                    status="running",
                    started_at=now,
                    owner=owner,
                    owner_pid=pid_of(owner),
                    attempt=jobs.c.attempt + 1,
                    heartbeat_at=clock,
                    lease_expires_at=clock + lease_seconds,
                )
                .returning(*_JOB_COLUMNS)
            ).one()
        return job_record(row)

    def _fence(self, job_id: str, attempt: int | None) -> ColumnElement[bool]:
        condition = and_(jobs.c.job_id == job_id, jobs.c.status == "running")
        return condition if attempt is None else and_(condition, jobs.c.attempt == attempt)

    def heartbeat(self, job_id: str, attempt: int, lease_seconds: float) -> bool:
        """Renew the lease of this attempt; False when the job is no longer this attempt's."""
        clock = self._now()
        with self._write() as db:
            done = db.execute(
                update(jobs)
                .where(self._fence(job_id, attempt))
                .values(heartbeat_at=clock, lease_expires_at=clock + lease_seconds)
            )
            return done.rowcount == 1

    def update_progress(
        self,
        job_id: str,
        attempt: int,
        progress: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> bool:
        """Record this attempt's progress; answer whether the execution should stop.

        It should stop when a cancel was asked for or when the job is no longer
        this attempt's (its lease expired and another trainer took it).
        """
        with self._write() as db:
            done = db.execute(
                update(jobs)
                .where(self._fence(job_id, attempt))
                .values(progress=json.dumps(progress), history=json.dumps(history))
                .returning(jobs.c.cancel_requested)
            ).first()
        return done is None or bool(done[0])

    def finish_job(
        self,
        job_id: str,
        status: str,
        now: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        attempt: int | None = None,
    ) -> bool:
        """Move an unfinished job to ``status``; False when it had finished already.

        With ``attempt``, only while the job is running as that attempt.
        """
        assert status in JOB_FINISHED
        where = (
            and_(jobs.c.job_id == job_id, jobs.c.status.in_(JOB_ACTIVE))
            if attempt is None
            else self._fence(job_id, attempt)
        )
        with self._write() as db:
            done = db.execute(
                update(jobs)
                .where(where)
                .values(
                    status=status,
                    finished_at=now,
                    result=dumps(result),
                    error=error,
                    data=None,
                    lease_expires_at=None,
                )
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
        """Register the job's version, mark it succeeded and maybe activate it: one transaction.

        Raises LeaseLostError when the job is no longer this attempt's, so a late
        duplicate execution cannot register a second version (the unique key on
        the version's job id holds even against a bug here).
        """
        with self._write() as db:
            held = db.execute(
                select(jobs.c.job_id).where(self._fence(job_id, attempt)).with_for_update()
            ).first()
            if held is None:
                raise LeaseLostError(f"job {job_id} is no longer held by attempt {attempt}")
            try:
                db.execute(
                    versions.insert().values(
                        version=version,
                        created_at=created_at,
                        summary=json.dumps(summary),
                        job_id=job_id,
                        attempt=attempt,
                    )
                )
            except IntegrityError as exc:
                raise LeaseLostError(f"job {job_id} has registered a version already") from exc
            if activate:
                self._activate(db, version, now)
            db.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(
                    status="succeeded",
                    finished_at=now,
                    result=json.dumps(result),
                    progress=json.dumps(progress),
                    history=json.dumps(history),
                    data=None,
                    lease_expires_at=None,
                )
            )

    def expire_leases(self, now: str, max_attempts: int) -> list[ExpiredLease]:
        """Re-queue (or fail, after ``max_attempts``) running jobs whose lease ran out.

        Judged by the database's clock, so the hosts' clocks do not matter. A job
        whose cancel was asked for is cancelled instead.
        """
        with self._write() as db:
            rows = db.execute(
                select(*(jobs.c[name] for name in EXPIRY_COLUMNS))
                .where(
                    jobs.c.status == "running",
                    jobs.c.lease_expires_at.is_not(None),
                    jobs.c.lease_expires_at < self._now(),
                )
                .with_for_update(skip_locked=True)
            ).all()
            expired = []
            for row in rows:
                lease, values = lease_expiry(row, now, max_attempts)
                db.execute(update(jobs).where(jobs.c.job_id == lease.job_id).values(**values))
                expired.append(lease)
        return expired

    def release_lease(self, job_id: str, attempt: int) -> bool:
        """End this attempt's lease now: the next ``expire_leases`` re-queues (or fails) it."""
        with self._write() as db:
            done = db.execute(
                update(jobs).where(self._fence(job_id, attempt)).values(lease_expires_at=0.0)
            )
            return done.rowcount == 1

    def fail_unleased_jobs(self, now: str) -> list[str]:
        """Fail running jobs without a lease (left by the single-host schema)."""
        with self._write() as db:
            rows = db.execute(
                update(jobs)
                .where(jobs.c.status == "running", jobs.c.lease_expires_at.is_(None))
                .values(
                    status="failed",
                    finished_at=now,
                    data=None,
                    error="the process running the job died",
                )
                .returning(jobs.c.job_id)
            ).all()
        return [r[0] for r in rows]

    # -- jobs: reads and cancel -----------------------------------------------

    def job(self, job_id: str) -> JobRecord | None:
        with self._read() as db:
            row = db.execute(select(*_JOB_COLUMNS).where(jobs.c.job_id == job_id)).first()
        return None if row is None else job_record(row)

    def jobs(self, limit: int) -> list[JobRecord]:
        query = select(*_JOB_COLUMNS).order_by(jobs.c.seq.desc()).limit(limit)
        with self._read() as db:
            return [job_record(r) for r in db.execute(query)]

    def job_data(self, job_id: str) -> bytes | None:
        with self._read() as db:
            data = db.execute(select(jobs.c.data).where(jobs.c.job_id == job_id)).first()
        return None if data is None or data[0] is None else bytes(data[0])

    def request_cancel(self, job_id: str, now: str) -> JobRecord:
        with self._write() as db:
            status = db.execute(
                select(jobs.c.status).where(jobs.c.job_id == job_id).with_for_update()
            ).scalar_one_or_none()
            values = cancel_values(job_id, status, now)
            row = db.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(**values)
                .returning(*_JOB_COLUMNS)
            ).one()
        return job_record(row)

    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        query = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        with self._read() as db:
            return {status: int(n) for status, n in db.execute(query)}


def engine_for(url: str) -> Engine:
    """A SQLAlchemy engine for a registry URL (``postgresql://`` uses psycopg 3)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed.set(drivername="sqlite+pysqlite"),
            connect_args={"timeout": 10.0, "check_same_thread": False},
        )
        prepare_sqlite(engine)
        return engine
    if backend == "postgresql":
        return create_engine(
            parsed.set(drivername="postgresql+psycopg"),
            pool_pre_ping=True,
            pool_size=4,
            max_overflow=4,
            pool_timeout=5,
            connect_args={"connect_timeout": 5, "application_name": "backprop-serve"},
        )
    raise ValueError(
        f"BACKPROP_REGISTRY_URL must be a sqlite:/// or postgresql:// URL, not {backend}://"
    )


def open_sql_registry(url: str) -> SQLRegistry:
    """``SQLRegistry`` at ``url``: SQLite is migrated as needed, PostgreSQL only checked."""
    engine = engine_for(url)
    try:
        with engine_file_lock(engine):  # processes opening one new file: one migrates
            if _stored_revision(engine) != HEAD_REVISION:
                from . import migrate  # Alembic is imported only when there is work or a refusal

                if engine.dialect.name == "sqlite":
                    migrate.upgrade(engine)
                else:
                    migrate.check(engine)
    except BaseException:
        engine.dispose()
        raise
    return SQLRegistry(engine)


def _stored_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database, read without Alembic (a quick path)."""
    with engine.connect() as connection:
        if "alembic_version" not in inspect(connection).get_table_names():
            return None
        found = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if found is None else str(found[0])


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    """The driver errors that mean "the database is not there" (not "the SQL is wrong")."""
    found: list[type[BaseException]] = []
    try:
        import psycopg

        found.append(psycopg.OperationalError)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    return tuple(found)
