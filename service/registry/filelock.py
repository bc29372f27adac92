"""An exclusive lock beside a SQLite file, held while a process creates or migrates it.

Several processes opening one new file at once (servers started together on an empty
store) would otherwise fail: switching a new file to WAL, or a migration's DDL while
another process migrates, answers "database is locked" without waiting. Under this
lock one process migrates, and the others then find the file at head.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # SQLAlchemy is not imported by the stdlib registry
    from sqlalchemy import Engine

# One thread of the process at a time, and re-entrant: opening a registry holds the
# lock while it runs the migration, which takes it too.
_guard = threading.RLock()
_held: dict[str, tuple[IO[str], int]] = {}  # lock file -> (its open file, depth)


@contextmanager
def sqlite_file_lock(database: str | None) -> Iterator[None]:
    """Hold ``<database>.lock`` exclusively (nothing for an in-memory database).

    The lock is a file of its own: closing any descriptor of the database itself would
    drop the POSIX locks SQLite holds on it in this process.
    """
    if not database or database == ":memory:":
        yield
        return
    path = os.path.abspath(database) + ".lock"
    with _guard:
        handle, depth = _held.get(path, (None, 0))
        if handle is None:
            handle = open(path, "a")  # noqa: SIM115 - kept open while the lock is held
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
            except BaseException:
                handle.close()
                raise
        _held[path] = (handle, depth + 1)
        try:
            yield
        finally:
            if depth:
                _held[path] = (handle, depth)
            else:
                del _held[path]
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()


def engine_file_lock(engine: Engine) -> AbstractContextManager[None]:
    """``sqlite_file_lock`` of a SQLAlchemy engine's file (nothing for PostgreSQL)."""
    return sqlite_file_lock(engine.url.database if engine.dialect.name == "sqlite" else None)
