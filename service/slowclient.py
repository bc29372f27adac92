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
from itertools import chain
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
    """uvicorn's httptools protocol with a deadline and a size cap on request heads.

    Cheap per request, since every request pays it: a head's start is one clock read,
    its size one sum when its headers are in (plus the bytes of any chunk that ends
    inside a head, which bounds an unfinished one), and the deadline one timer per
    connection that re-arms itself for whatever remains of the current head's time.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout, self._head_max = head_limits()
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started: float | None = None  # loop time; None once the headers are in
        self._head_bytes = 0  # of chunks that ended inside the current head
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_started = self.loop.time()  # sending nothing at all is a slow head too
        self._watch(self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._head_started is not None and not self._refused:  # the chunk ended in a head
            self._head_bytes += len(data)
            if self._head_bytes > self._head_max:
                self._refuse(b"431 Request Header Fields Too Large", b"request head too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_started is None:  # the next request on a kept-alive connection
            self._head_started = self.loop.time()
            self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_started = None
        headers = self.headers
        size = len(self.url) + sum(map(len, chain.from_iterable(headers))) + 4 * len(headers)
        if size > self._head_max:
            self._refuse(b"431 Request Header Fields Too Large", b"request head too large")
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    # -- the deadline ------------------------------------------------------------

    def _watch(self, delay: float) -> None:
        self._head_timer = self.loop.call_later(delay, self._check_head)

    def _check_head(self) -> None:
        """Refuse a head older than the timeout; else look again when the current
        head (or the next one) could first be."""
        self._head_timer = None
        if self._refused or self.transport.is_closing():
            return
        started = self._head_started
        if started is None:
            self._watch(self._head_timeout)
            return
        late = self.loop.time() - started
        if late < self._head_timeout:
            self._watch(self._head_timeout - late)
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.info("closed %s: its request head took over %ss", client, self._head_timeout)
        self._refuse(b"408 Request Timeout", b"request head not received in time")

    def _refuse(self, status: bytes, message: bytes) -> None:
        self._head_started, self._refused = None, True
        if not self.transport.is_closing():
            self.transport.write(_answer(status, message))
            self.transport.close()
