"""A bound on how long and how large a request head may be (slowloris defence).

uvicorn's ``timeout_keep_alive`` only closes a connection that is idle *between*
requests; nothing bounds the time a client takes to send a request's line and
headers, and httptools keeps every header byte it is given. A client sending its
headers a byte per second would hold a connection (and a file descriptor) for as
long as it likes. ``HeaderTimeoutProtocol`` is uvicorn's httptools protocol plus
two limits, checked from the first byte of each request until its headers end:

- ``BACKPROP_HEADER_TIMEOUT_SECONDS``: the whole head must arrive within this time,
  else the answer is 408 and the connection is closed;
- ``BACKPROP_MAX_HEADER_BYTES``: the request line plus headers must stay below
  this size, else 431 and close.

A connection that sends nothing at all after opening is closed by the same timer.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("backprop.slowclient")


@cache
def head_limits() -> tuple[float, int]:
    """(seconds, bytes) for a request head, read once per process from the settings."""
    from .settings import Settings

    settings = Settings()
    return settings.header_timeout_seconds, settings.max_header_bytes


def _answer(status: bytes, message: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: text/plain; charset=utf-8\r\n" % status
    head += b"content-length: %d\r\nconnection: close\r\n\r\n" % len(message)
    return head + message


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on request heads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout, self._head_max = head_limits()
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # from connection or message start until headers complete
        self._head_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if not self._in_head:  # the next request on a kept-alive connection
            self._in_head = True
            self._arm()

    def on_url(self, url: bytes) -> None:
        if self._within_head_limit(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._within_head_limit(len(name) + len(value) + 4):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    # -- the limits --------------------------------------------------------------

    def _within_head_limit(self, size: int) -> bool:
        """Count ``size`` more head bytes; refuse the request once over the limit."""
        if self._refused:
            return False
        self._head_bytes += size
        if self._head_bytes > self._head_max:
            self._refuse(b"431 Request Header Fields Too Large", b"request head too large")
            return False
        return True

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self._head_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.info("closed %s: its request head took over %ss", client, self._head_timeout)
            self._refuse(b"408 Request Timeout", b"request head not received in time")

    def _refuse(self, status: bytes, message: bytes) -> None:
        self._disarm()
        self._in_head, self._refused = False, True
        if not self.transport.is_closing():
            self.transport.write(_answer(status, message))
            self.transport.close()
