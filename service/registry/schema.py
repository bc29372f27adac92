"""The registry's tables, one SQLAlchemy Core definition for SQLite and PostgreSQL.

The Alembic migrations in ``migrations/versions`` build exactly these tables
(a test compares the two). ``SQLRegistry`` reads and writes them through these
``Table`` objects, one SQL for both databases; ``SQLiteRegistry`` (``lite.py``)
spells its SQL out for SQLite alone, and the contract tests hold the two alike.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)

from .rows import ACTIVE_CHANNEL, HEAD_REVISION

__all__ = ["ACTIVE_CHANNEL", "HEAD_REVISION", "active_pointer", "jobs", "metadata", "versions"]

metadata = MetaData()

versions = Table(
    "versions",
    metadata,
    Column("version", Text, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'ok'")),
    Column("reason", Text),
    Column("job_id", Text),
    Column("attempt", Integer),
    # one version per job, whatever number of times the job ran (NULLs for uploads)
    Index("versions_job_id", "job_id", unique=True),
)

active_pointer = Table(
    "active_pointer",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Text),
    Column("generation", BigInteger, nullable=False),
    Column("changed_at", Text),
    CheckConstraint("id = 1", name="active_pointer_one_row"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("data", LargeBinary),
    Column("created_at", Text, nullable=False),
    Column("started_at", Text),
    Column("finished_at", Text),
    Column("progress", Text),
    Column("history", Text, nullable=False, server_default=text("'[]'")),
    Column("result", Text),
    Column("error", Text),
    Column("cancel_requested", Integer, nullable=False, server_default=text("0")),
    Column("owner_pid", Integer),
    Column("heartbeat_at", Float),
    Column("owner", Text),
    Column("attempt", Integer, nullable=False, server_default=text("0")),
    Column("lease_expires_at", Float),
    Index("jobs_status", "status", "seq"),
    sqlite_autoincrement=True,
)
