"""Logging set-up: plain text for people, or one JSON object per line.

Access lines, one per request, skip the ``logging`` machinery: ``AccessLog`` formats
each straight to a string (the timestamp's text reused within a second) and writes
them in batches, one write for up to ``MAX_BATCH`` lines or ``FLUSH_SECONDS`` of them.
The batch is written before any other log record (so lines keep their order), when
the server shuts down (the lifespan's end) and at interpreter exit, so a clean stop
loses no line. Each line looks exactly as the formatters below would write it.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO

import orjson

_FIELDS = ("request_id", "method", "path", "route", "status", "duration_ms")
ACCESS_LOGGER = "backprop.access"
MAX_BATCH = 256
FLUSH_SECONDS = 0.05


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the access-log fields when present."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class TextFormatter(logging.Formatter):
    """Time, level, logger, message; the request id after access lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} id={request_id}" if request_id else line


class AccessLog:
    """The access lines of one process, batched to the log stream."""

    def __init__(self) -> None:
        self.stream: IO[str] = sys.stderr
        self.json = False
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""
        self._timer: asyncio.TimerHandle | None = None
        self._lock = threading.Lock()

    def configure(self, stream: IO[str], fmt: str) -> None:
        self.flush()
        self.stream, self.json = stream, fmt == "json"
        self._second = -1  # the cached timestamp text is per format

    def write(
        self, method: str, path: str, route: str, status: int, seconds: float, request_id: str
    ) -> None:
        """Queue one request's line (in the event loop's thread)."""
        now = time.time()
        ms = seconds * 1000
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = (
                datetime.fromtimestamp(second, UTC).isoformat()[:19]
                if self.json
                else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            )
        milli = int((now - second) * 1000)
        if self.json:
            line = self._json_line(
                f"{self._stamp}.{milli:03d}+00:00", method, path, route, status, ms, request_id
            )
        else:
            line = (
                f"{self._stamp},{milli:03d} INFO {ACCESS_LOGGER}: {method} {path} {status} "
                f"{ms:.2f}ms id={request_id}\n"
            )
        lines = self._lines
        lines.append(line)
        if len(lines) >= MAX_BATCH:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop here: nothing would flush later
                self.flush()
                return
            self._timer = loop.call_later(FLUSH_SECONDS, self.flush)

    @staticmethod
    def _json_line(
        stamp: str, method: str, path: str, route: str, status: int, ms: float, request_id: str
    ) -> str:
        entry = {
            "time": stamp,
            "level": "info",
            "logger": ACCESS_LOGGER,
            "message": f"{method} {path} {status} {ms:.2f}ms",
            "request_id": request_id,
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(ms, 3),
        }
        return orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE).decode()

    def flush(self) -> None:
        """Write every queued line, in one write (safe from any thread)."""
        with self._lock:
            timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()
            lines = self._lines
            count = len(lines)
            if not count:
                return
            # Slice, then delete that many: a line appended in between stays queued.
            text = "".join(lines[:count])
            del lines[:count]
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken stream: nothing to do
                pass


access = AccessLog()
atexit.register(access.flush)


class _OrderedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that first writes the queued access lines (order kept)."""

    def emit(self, record: logging.LogRecord) -> None:
        access.flush()
        super().emit(record)


def configure_logging(level: str, fmt: str) -> None:
    """Route the service's and uvicorn's loggers to stderr in the chosen format."""
    handler = _OrderedHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    access.configure(sys.stderr, fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The service writes its own access line (with the request id): silence uvicorn's.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
