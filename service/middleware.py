"""Pure ASGI middleware (no BaseHTTPMiddleware): request id, access log, metrics and
the body-size limit, for every request including the fast predict path.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import MutableMapping
from random import getrandbits
from typing import Any

import orjson

from . import metrics
from .errors import is_v2_path
from .logs import ACCESS_LOGGER, access

log = logging.getLogger(ACCESS_LOGGER)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

# A request whose connection closed before its answer: nginx's "client closed request",
# unless the server closed it (``service.slowclient`` puts its answer's status here).
CLIENT_GONE = 499
CLOSED_BY_SERVER = "backprop.closed_with"


class ClientGone(Exception):
    """The connection closed before the request's body had arrived."""


def gone_status(scope: Scope) -> int:
    """The status to log for a request whose connection closed before its answer."""
    return int(scope.get(CLOSED_BY_SERVER, CLIENT_GONE))


class RequestContext:
    """Tags each request with an id, logs one line, counts it, bounds its body."""

    def __init__(self, app: Any, max_body_bytes: int, max_train_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_train_body_bytes = max_train_body_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        status = 500
        observed = False
        rid_header = (b"x-request-id", request_id)

        def observe() -> float:
            nonlocal observed
            elapsed = time.perf_counter() - start
            if not observed:
                observed = True
                metrics.observe_request(_route_template(scope), scope["method"], status, elapsed)
            return elapsed

        gone = False

        async def receive_watched() -> Message:
            nonlocal gone, status
            message = await receive()
            if message["type"] == "http.disconnect" and not started:
                gone, status = True, gone_status(scope)  # no answer can reach the client
            return message

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if gone:
                return  # nobody to answer: the log keeps the status the closing gave
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Counted before the last byte leaves: a client that has its answer
                # (and then scrapes any worker) always finds its request counted.
                observe()
            await send(message)

        try:
            limit = self._limit(scope)
            length = _content_length(scope) if scope["method"] in _WITH_BODY else 0
            v2 = is_v2_path(scope["path"])
            if length is None:  # chunked: read it here, bounded, then replay it
                body = await read_body(receive, limit)
                if body is None:
                    await send_413(send_with_id, limit, v2=v2)
                    return
                receive = _replay(body)
            if length is not None and length > limit:
                await send_413(send_with_id, limit, v2=v2)
            else:
                await self.app(scope, receive_watched if length else receive, send_with_id)
        except ClientGone:
            status = gone_status(scope)
        finally:
            elapsed = observe()
            if log.isEnabledFor(logging.INFO):  # cached by logging: cheaper than the line
                access.write(
                    scope["method"],
                    scope["path"],
                    _route_template(scope),
                    status,
                    elapsed,
                    request_id.decode(),
                )

    def _limit(self, scope: Scope) -> int:
        return self.max_train_body_bytes if scope["path"] == "/train" else self.max_body_bytes


def new_request_id() -> bytes:
    """128 random bits as 32 hex digits, like a uuid4's. From ``random`` (seeded from
    the OS once per process, and again in a forked child) rather than a system call per
    request: an id must be unique, not unguessable."""
    return b"%032x" % getrandbits(128)


def valid_request_id(value: bytes) -> bool:
    """Whether a client's X-Request-ID may be echoed and logged as it is."""
    return _REQUEST_ID.match(value) is not None


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID.match(value):
            return bytes(value)
    return new_request_id()


def _content_length(scope: Scope) -> int | None:
    """The declared body size; None when the body is chunked (no Content-Length)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return None


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None) or scope.get("route_template")
    return path if isinstance(path, str) else "unmatched"


def too_large(limit: int, *, v2: bool = False) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body refusing a body over ``limit`` bytes (V2 error shape under /v2)."""
    message = f"the request body is larger than the limit of {limit} bytes"
    body = orjson.dumps({"error": message} if v2 else {"detail": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return headers, body


async def send_413(send: Any, limit: int, *, v2: bool = False) -> None:
    """Refuse a body over ``limit`` bytes, in the V2 error shape under ``/v2``."""
    headers, body = too_large(limit, v2=v2)
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or None when it exceeds ``limit`` bytes; ClientGone when
    the connection closes first."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
