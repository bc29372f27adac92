"""The registry database failing (locked, full, unreadable): a clear error, never a hang.

Every registry call waits at most its busy timeout (10 s for SQLite) for a lock.
A call that still fails answers 503 with what the database said and a Retry-After,
instead of a bare 500; a registry that cannot be opened at start stops the server
with one log line naming the file and the reason.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .errors import is_v2_path
from .registry import sqlite_file
from .settings import Settings
from .store import REGISTRY_FILE, ModelStore

log = logging.getLogger("backprop.registry")

RETRY_AFTER_SECONDS = 5


def registry_errors(url: str | None = None) -> tuple[type[Exception], ...]:
    """The errors of the registry's database: sqlite3's, and SQLAlchemy's where it is used.

    SQLAlchemy's are included once it is imported, or when ``url`` names a registry
    it serves (PostgreSQL): the default SQLite file is served without it.
    """
    errors: list[type[Exception]] = [sqlite3.Error]
    if "sqlalchemy" in sys.modules or (url is not None and sqlite_file(url) is None):
        from sqlalchemy.exc import DBAPIError

        errors.append(DBAPIError)
    return tuple(errors)


def describe(exc: Exception) -> str:
    """What went wrong with the registry, in one sentence."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    cause = orig if isinstance(orig, BaseException) else exc
    text = str(cause) or type(cause).__name__
    if "locked" in text or "busy" in text:
        return f"the model registry is locked by another process ({text}); retry shortly"
    if "full" in text or "I/O" in text:
        return f"the model registry cannot be written: {text} (is its disk full or failing?)"
    return f"the model registry cannot be used: {text}"


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    message = describe(exc)
    log.error("%s %s: %s", request.method, request.scope["path"], message)
    body = {"error": message} if is_v2_path(request.scope["path"]) else {"detail": message}
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return JSONResponse(body, status_code=503, headers=headers)


def install_registry_error_handler(app: FastAPI) -> None:
    """Answer registry failures as 503 with the reason."""
    settings: Settings = app.state.settings
    for kind in registry_errors(settings.registry_url):
        app.add_exception_handler(kind, _handle)


def open_store(settings: Settings) -> ModelStore:
    """The store, or one clear log line naming the registry and why it failed."""
    try:
        return ModelStore.from_settings(settings)
    except registry_errors() + (OSError,) as exc:  # SQLAlchemy may be imported by now
        path = settings.registry_url or Path(settings.model_dir).resolve() / REGISTRY_FILE
        log.critical("cannot open the model registry %s: %s", path, describe(exc))
        raise
