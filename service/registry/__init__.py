"""The registry: which versions exist, which one is active, and the training jobs.

``open_registry(url)`` opens it by URL, the one way the rest of the service gets
one: a SQLite file (the single-host default, beside the version folders; it
migrates itself when opened, and one at the head revision is opened without
SQLAlchemy) or PostgreSQL (``postgresql://user:pass@host/db``; its schema is
migrated by ``backprop-serve db upgrade``, and opening refuses a database at
another revision). ``Registry`` is the protocol the service codes against;
``PointerWatcher`` follows the active pointer (poll plus NOTIFY).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .lite import SQLiteRegistry, sqlite_file
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
from .watch import PointerWatcher

if TYPE_CHECKING:
    from .sql import SQLRegistry, engine_for

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
    "sqlite_file",
]

# Names served by .sql, imported on first use: SQLAlchemy loads only when they are.
_FROM_SQL = ("SQLRegistry", "engine_for")


def __getattr__(name: str) -> Any:
    if name in _FROM_SQL:
        from . import sql

        return getattr(sql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_url(model_dir: str | Path) -> str:
    """The single-host registry: the SQLite file in the model store."""
    return f"sqlite:///{Path(model_dir).resolve() / REGISTRY_FILE}"


def open_registry(url: str) -> Registry:
    """Open the registry at ``url``; a SQLite file is created and migrated as needed.

    A plain SQLite file is served by ``SQLiteRegistry`` (the standard library;
    SQLAlchemy and Alembic are imported only to migrate it). PostgreSQL, and
    the SQLite URLs that one does not take, by ``SQLRegistry``; PostgreSQL is
    only checked: SchemaOutdatedError (naming ``backprop-serve db upgrade``)
    when its schema is not this code's.
    """
    path = sqlite_file(url)
    if path is not None:
        return SQLiteRegistry(path)
    from .sql import open_sql_registry

    return open_sql_registry(url)


if TYPE_CHECKING:

    def _implements_the_protocol(lite: SQLiteRegistry, sql: SQLRegistry) -> list[Registry]:
        """Never called: mypy checks here that both registries are a Registry."""
        return [lite, sql]
