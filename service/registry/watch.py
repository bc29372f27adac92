"""Following the active pointer from every replica: a poll, woken early by NOTIFY.

A background thread reads the pointer (version and generation) every
``poll_seconds``. On PostgreSQL a second thread holds a dedicated connection
that ``LISTEN``s on the activation channel and wakes the poll at once, so a new
version is seen within milliseconds; a lost notification (or a lost listener
connection, which is reopened after ``LISTEN_RETRY_SECONDS``) only delays it to
the next poll. Nothing here runs on a request's path: requests read memory.
"""

from __future__ import annotations

import logging
import threading

from .protocol import Registry
from .records import ActivePointer, RegistryUnavailableError
from .rows import ACTIVE_CHANNEL

log = logging.getLogger("backprop.registry")

LISTEN_RETRY_SECONDS = 5.0
LISTENER_NAME = "backprop-listener"


class PointerWatcher:
    """The latest active pointer this process has seen, kept fresh by two threads."""

    def __init__(self, registry: Registry, poll_seconds: float, listen: bool = True) -> None:
        self.registry = registry
        self.poll_seconds = poll_seconds
        self.latest: ActivePointer | None = None
        self.reachable = True
        self.last_error: str | None = None
        self.listening = False
        self._changed = threading.Condition()
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, name="pointer-poll", daemon=True)]
        if listen and registry.dialect == "postgresql":
            self._threads.append(
                threading.Thread(target=self._listen, name="pointer-listen", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def wait_for_change(self, generation: int | None, timeout: float) -> ActivePointer | None:
        """Block until the pointer's generation differs from ``generation`` or ``timeout``."""
        with self._changed:
            self._changed.wait_for(
                lambda: self.latest is not None and self.latest.generation != generation,
                timeout,
            )
            return self.latest

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()
        for thread in self._threads:
            thread.join(timeout=LISTEN_RETRY_SECONDS + 2)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                pointer = self.registry.active_pointer()
            except Exception as exc:  # the database is down or restarting
                if self.reachable:
                    log.error("the registry %s cannot be read: %s", self.registry.url, exc)
                self.reachable, self.last_error = False, _short(exc)
            else:
                if not self.reachable:
                    log.info("the registry %s is reachable again", self.registry.url)
                self.reachable, self.last_error = True, None
                with self._changed:
                    if self.latest != pointer:
                        self.latest = pointer
                        self._changed.notify_all()
            self._kick.wait(self.poll_seconds)
            self._kick.clear()

    def _listen(self) -> None:
        import psycopg

        from .sql import SQLRegistry  # only a PostgreSQL registry listens: SQLAlchemy's

        assert isinstance(self.registry, SQLRegistry)
        url = self.registry.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    conninfo, autocommit=True, application_name=LISTENER_NAME, connect_timeout=5
                ) as connection:
                    connection.execute(f"LISTEN {ACTIVE_CHANNEL}")
                    self.listening = True
                    self._kick.set()  # anything missed while not listening
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=1.0):
                            self._kick.set()
            except Exception as exc:
                if self.listening:
                    log.warning(
                        "lost the notification connection to %s (%s); polling every %ss",
                        self.registry.url,
                        _short(exc),
                        self.poll_seconds,
                    )
            self.listening = False
            self._stop.wait(LISTEN_RETRY_SECONDS)


def _short(exc: BaseException) -> str:
    if isinstance(exc, RegistryUnavailableError):
        return str(exc)
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
