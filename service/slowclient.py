"""Bounds on how long and how large a request head may be, and how long its body may
take (slowloris defence).

uvicorn's ``timeout_keep_alive`` only closes a connection that is idle *between*
requests; nothing bounds the time a client takes to send a request's line, headers
or body, and httptools keeps every header byte it is given. A client sending a byte
per second would hold a connection (and a file descriptor, and a task waiting for
the body) for as long as it likes. ``HeaderTimeoutProtocol`` is uvicorn's httptools
protocol plus these limits:

- ``BACKPROP_HEADER_TIMEOUT_SECONDS``: the whole head must arrive within this time,
  else the answer is 408 and the connection is closed;
- ``BACKPROP_MAX_HEADER_BYTES``: the request line plus headers must stay below
  this size, else 431 and close;
- ``BACKPROP_BODY_TIMEOUT_SECONDS``: the body must arrive within this time of its
  head, plus a second per 64 KiB it has brought (as Apache's ``mod_reqtimeout`` has
  it: a large upload at a fair rate is never cut, a trickle is), else 408 and close;
- at a graceful shutdown, a body still on its way a second before uvicorn's grace
  ends is answered 503 and closed, rather than cancelled into a logged 500.

A connection that sends nothing at all after opening is closed by the head's timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from functools import cache
from itertools import chain
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .middleware import CLOSED_BY_SERVER

log = logging.getLogger("backprop.slowclient")


BODY_BYTES_PER_SECOND = 64 * 1024  # each of these a body brings extends its time by 1 s


@cache
def request_limits() -> tuple[float, int, float]:
    """(head seconds, head bytes, body seconds), read once per process from the settings."""
    from .settings import Settings

    settings = Settings()
    return settings.header_timeout_seconds, settings.max_header_bytes, settings.body_timeout_seconds


def _answer(status: bytes, message: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: text/plain; charset=utf-8\r\n" % status
    head += b"content-length: %d\r\nconnection: close\r\n\r\n" % len(message)
    return head + message


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines on request heads and bodies and a
    size cap on heads.

    Cheap per request, since every request pays it: a head's start is one clock read,
    its size one sum when its headers are in (plus the bytes of any chunk that ends
    inside a head, which bounds an unfinished one), a body's start one more clock read
    and its size one sum per chunk; the deadlines are one timer per connection that
    re-arms itself for whatever remains of the current head's or body's time.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout, self._head_max, self._body_timeout = request_limits()
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started: float | None = None  # loop time; None once the headers are in
        self._head_bytes = 0  # of chunks that ended inside the current head
        self._body_started: float | None = None  # loop time; None unless a body is due
        self._body_bytes = 0
        self._body_cutoff: float | None = None  # loop time, set by a graceful shutdown
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
        elif self._body_started is not None and not self._refused:  # it ended in a body
            self._wake_by(self._body_deadline(self._body_started))

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
            self._body_started, self._body_bytes = self.loop.time(), 0
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            self._body_bytes += len(body)
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._body_started = None
        if not self._refused:
            super().on_message_complete()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown; a body still due is given until a second before
        the grace ends (after it uvicorn cancels the request, which it logs as a 500)."""
        super().shutdown()
        grace = self.config.timeout_graceful_shutdown
        if self._body_started is not None and grace is not None and not self._refused:
            self._body_cutoff = self.loop.time() + max(0.0, grace - 1.0)
            self._wake_by(self._body_cutoff)

    # -- the deadline ------------------------------------------------------------

    def _watch(self, delay: float) -> None:
        self._head_timer = self.loop.call_later(delay, self._check_head)

    def _wake_by(self, when: float) -> None:
        """Have the timer fire no later than ``when`` (loop time)."""
        timer = self._head_timer
        if timer is None or timer.when() > when:
            if timer is not None:
                timer.cancel()
            self._head_timer = self.loop.call_at(when, self._check_head)

    def _body_deadline(self, started: float) -> float:
        return started + self._body_timeout + self._body_bytes / BODY_BYTES_PER_SECOND

    def _check_head(self) -> None:
        """Refuse a head or body older than its time; else look again when the current
        one (or the next head) could first be."""
        self._head_timer = None
        if self._refused or self.transport.is_closing():
            return
        now = self.loop.time()
        if self._body_started is not None:
            self._check_body(now, self._body_started)
            return
        started = self._head_started
        if started is None:
            self._watch(self._head_timeout)
            return
        late = now - started
        if late < self._head_timeout:
            self._watch(self._head_timeout - late)
            return
        log.info("closed %s: its request head took over %ss", self._who(), self._head_timeout)
        self._refuse(b"408 Request Timeout", b"request head not received in time")

    def _check_body(self, now: float, started: float) -> None:
        if self.cycle is not None and self.cycle.response_started:
            # Answered without its whole body (a 413, say): uvicorn closes the connection
            # once the answer is out; nothing is due any more.
            self._body_started = None
            self._watch(self._head_timeout)
            return
        deadline = self._body_deadline(started)
        cutoff = self._body_cutoff
        if cutoff is not None and cutoff <= deadline:
            if now < cutoff:
                self._watch(cutoff - now)
                return
            log.info("closed %s: its request body was still due at shutdown", self._who())
            self._refuse(b"503 Service Unavailable", b"the server is shutting down")
            return
        if now < deadline:
            self._watch(deadline - now)
            return
        log.info("closed %s: its request body took over %.0fs", self._who(), deadline - started)
        self._refuse(b"408 Request Timeout", b"request body not received in time")

    def _who(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"

    def _refuse(self, status: bytes, message: bytes) -> None:
        if self._body_started is not None and self.cycle is not None:  # the app is running
            scope = cast(MutableMapping[str, Any], self.cycle.scope)
            scope[CLOSED_BY_SERVER] = int(status[:3])  # the request's log line says so
        self._head_started, self._body_started, self._refused = None, None, True
        if not self.transport.is_closing():
            self.transport.write(_answer(status, message))
            self.transport.close()
