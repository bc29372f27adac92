"""The registry: which versions exist, which one is active, and the training jobs.

``open_registry(url)`` opens it by URL, the one way the rest of the service gets
one: a SQLite file (the single-host default, beside the version folders; it
migrates itself when opened) or PostgreSQL (``postgresql://user:pass@host/db``;
its schema is migrated by ``backprop-serve db upgrade``, and opening refuses a
database at another revision). ``Registry`` is the protocol the service codes
against; ``PointerWatcher`` follows the active pointer (poll plus NOTIFY).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from .protocol import Registry
from .records import (
    JOB_ACTIVE,
    JOB_FINISHED,
    ActivePointer,
    ExpiredLease,
    JobFinishedError,
    JobRecord,
    LeaseLostError,
    QueueFullError,
    RegistryUnavailableError,
    SchemaOutdatedError,
    VersionRecord,
)
from .schema import HEAD_REVISION
from .sql import SQLRegistry, prepare_sqlite
from .watch import PointerWatcher

REGISTRY_FILE = "registry.sqlite3"

__all__ = [
    "JOB_ACTIVE",
    "JOB_FINISHED",
    "REGISTRY_FILE",
    "ActivePointer",
    "ExpiredLease",
    "JobFinishedError",
    "JobRecord",
    "LeaseLostError",
    "PointerWatcher",
    "QueueFullError",
    "Registry",
    "RegistryUnavailableError",
    "SQLRegistry",
    "SQLiteRegistry",
    "SchemaOutdatedError",
    "VersionRecord",
    "default_url",
    "engine_for",
    "open_registry",
]


def default_url(model_dir: str | Path) -> str:
    """The single-host registry: the SQLite file in the model store."""
    return f"sqlite:///{Path(model_dir).resolve() / REGISTRY_FILE}"


def engine_for(url: str):  # type: ignore[no-untyped-def]
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


def open_registry(url: str) -> SQLRegistry:
    """Open the registry at ``url``; a SQLite file is created and migrated as needed.

    PostgreSQL is only checked: SchemaOutdatedError (naming ``backprop-serve db
    upgrade``) when its schema is not this code's.
    """
    engine = engine_for(url)
    try:
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


def SQLiteRegistry(path: str | Path) -> SQLRegistry:  # noqa: N802 - the name callers know
    """The single-host registry in one SQLite file (kept for callers of the old class)."""
    return open_registry(f"sqlite:///{Path(path).resolve()}")


def _implements_the_protocol(registry: SQLRegistry) -> Registry:
    """Never called: mypy checks here that SQLRegistry is a Registry."""
    return registry
