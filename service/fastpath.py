"""``POST /predict`` and V2 infer served straight from ASGI, before the framework.

The forward pass takes microseconds, so FastAPI's routing, dependency and response
layers, and even the generic ``RequestContext`` middleware's wrappers, would be most
of the cost. ``serve_fast`` does what both would do for these calls in one pass:
request id, body limit, the answer, metrics and the access line. The FastAPI routes
of the same paths (for the OpenAPI schema, and when the fast path is off) call the
same ``predict_answer`` / ``infer_answer``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from . import metrics
from .errors import ModelNotFound, ServiceError, error_body
from .inference import predict_answer_bytes
from .logs import ACCESS_LOGGER, access
from .middleware import (
    ClientGone,
    gone_status,
    new_request_id,
    read_body,
    too_large,
    valid_request_id,
)
from .store import is_valid_version
from .v2.infer import (
    HEADER_LENGTH,
    INFER_ROUTE,
    VERSIONED_INFER_ROUTE,
    infer_answer,
)

log = logging.getLogger(ACCESS_LOGGER)
_JSON = (b"content-type", b"application/json")
PREDICT_ROUTE = "/predict"


def query_version(query_string: bytes) -> str | None:
    """The ``version=`` of a query string; None when absent."""
    if not query_string:
        return None
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True).get("version")
    return values[-1] if values and values[-1] else None  # the last one; empty is unset


async def predict_answer(state: Any, body: bytes, version: str | None) -> tuple[int, bytes]:
    """Status and encoded body of a predict call."""
    try:
        if version is not None and not is_valid_version(version):
            raise ModelNotFound(f"no version {version!r} in the model store")
        model = state.cache.active if version is None else None  # no coroutine hop
        if model is None:
            model = await state.cache.get(version)
        answer, rows = predict_answer_bytes(body, model, state.settings.max_batch_rows)
    except ServiceError as exc:
        return exc.status_code, orjson.dumps(error_body(exc))
    metrics.count_predictions(model.version, rows)
    return 200, answer


async def serve_fast(
    state: Any,
    scope: MutableMapping[str, Any],
    receive: Any,
    send: Any,
    target: tuple[str, str | None] | None,
) -> None:
    """Answer ``POST /predict`` (``target`` None) or a V2 infer call (model name, version)."""
    start = time.perf_counter()
    route = PREDICT_ROUTE if target is None else INFER_ROUTE
    if target is not None and target[1] is not None:
        route = VERSIONED_INFER_ROUTE
    request_id = length = header_length = encoding = accept = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value
        elif name == b"x-request-id":
            if request_id is None and valid_request_id(value):
                request_id = bytes(value)
        elif name == HEADER_LENGTH:
            header_length = value
        elif name == b"content-encoding":
            encoding = value
        elif name == b"accept-encoding":
            accept = value
    if request_id is None:
        request_id = new_request_id()
    status = 500
    observed = False
    try:
        limit = state.settings.max_body_bytes
        try:
            declared = int(length) if length is not None else 0
        except ValueError:
            declared = 0
        body = await read_body(receive, limit) if declared <= limit else None
        if body is None:
            status = 413
            headers, answer = too_large(limit, v2=target is not None)
        elif target is None:
            status, answer = await predict_answer(state, body, query_version(scope["query_string"]))
            headers = [_JSON, (b"content-length", str(len(answer)).encode())]
        else:
            status, headers, answer = await infer_answer(
                state, target[0], target[1], body, header_length, encoding, accept
            )
            headers.append((b"content-length", str(len(answer)).encode()))
        headers.append((b"x-request-id", request_id))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        # Counted before the last byte leaves: a client that has its answer (and then
        # scrapes any worker) always finds its request counted.
        metrics.observe_request(route, "POST", status, time.perf_counter() - start)
        observed = True
        await send({"type": "http.response.body", "body": answer})
    except ClientGone:  # no one to answer
        status = gone_status(scope)
    finally:
        elapsed = time.perf_counter() - start
        if not observed:
            metrics.observe_request(route, "POST", status, elapsed)
        if log.isEnabledFor(logging.INFO):
            access.write("POST", scope["path"], route, status, elapsed, request_id.decode())
