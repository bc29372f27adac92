"""What every gRPC call gets, as every HTTP request does: a request id, one access
line, the request counter and latency histogram, and errors as status codes.

The metrics are the HTTP ones (gRPC is HTTP/2): ``route`` is the call's full method
name (``/inference.GRPCInferenceService/ModelInfer``), ``method`` is ``GRPC`` and
``status`` the status code's name (``OK``, ``INVALID_ARGUMENT``, ...).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from .. import metrics
from ..errors import BadRequest, ServiceError, error_message

log = logging.getLogger("backprop.access")
errors_log = logging.getLogger("backprop.rpc")

PROTOCOL_METHOD = "GRPC"
REQUEST_ID = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  # the rule HTTP's header follows

# A ServiceError's HTTP status as the gRPC status code of the same meaning.
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}

Servicer = TypeVar("Servicer")
Method = Callable[[Servicer, Any, Any], Awaitable[Any]]

_children: dict[tuple[str, str], tuple[Any, Any]] = {}


def status_code(exc: ServiceError) -> grpc.StatusCode:
    """The status code a service error answers with (never UNKNOWN)."""
    return STATUS_CODES.get(exc.status_code, grpc.StatusCode.INTERNAL)


def request_id(context: Any) -> str:
    """The caller's ``x-request-id`` when it is a sensible id; a new random one otherwise."""
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID and isinstance(value, str) and _REQUEST_ID.match(value):
            return value
    return os.urandom(16).hex()


def observe(route: str, code: grpc.StatusCode, seconds: float) -> None:
    """Count one answered call and its duration, on the HTTP request metrics."""
    key = (route, code.name)
    children = _children.get(key)
    if children is None:
        children = (
            metrics.HTTP_REQUESTS.labels(route, PROTOCOL_METHOD, code.name),
            metrics.HTTP_DURATION.labels(route, PROTOCOL_METHOD),
        )
        _children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def log_access(path: str, route: str, code: grpc.StatusCode, elapsed: float, rid: str) -> None:
    """The call's access line, with the fields of HTTP's (``path`` is the method called,
    ``route`` the one that answered, ``status`` the code's name)."""
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(
        "%s %s %s %.2fms",
        PROTOCOL_METHOD,
        path,
        code.name,
        elapsed * 1000,
        extra={
            "request_id": rid,
            "method": PROTOCOL_METHOD,
            "path": path,
            "route": route,
            "status": code.name,
            "duration_ms": round(elapsed * 1000, 3),
        },
    )


def decoded(request_type: Any, data: bytes) -> Any:
    """The request message, or INVALID_ARGUMENT (grpcio's own decoding would be INTERNAL)."""
    try:
        return request_type.FromString(data)
    except DecodeError:
        raise BadRequest(
            f"the request is not a valid {request_type.DESCRIPTOR.full_name} message"
        ) from None


def _serialized(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def unary_handler(method: Any) -> Any:
    """A unary method handler that hands the request bytes to ``method`` (an ``observed``
    method decodes them), so a malformed message is the client's mistake,
    INVALID_ARGUMENT, counted like any other call."""
    return grpc.unary_unary_rpc_method_handler(method, response_serializer=_serialized)


def unary_handlers(service: str, servicer: Any, names: tuple[str, ...]) -> Any:
    """The generic handler of ``service``: ``unary_handler`` for each method named."""
    return grpc.method_handlers_generic_handler(
        service, {name: unary_handler(getattr(servicer, name)) for name in names}
    )


def observed(service: str, request_type: Any) -> Callable[[Method[Servicer]], Method[Servicer]]:
    """Wrap a unary servicer method: decoding, id, metrics, access line, errors as status."""

    def decorate(method: Method[Servicer]) -> Method[Servicer]:
        route = f"/{service}/{method.__name__}"

        @functools.wraps(method)
        async def call(self: Servicer, request: Any, context: Any) -> Any:
            start = time.perf_counter()
            rid = request_id(context)
            code = grpc.StatusCode.OK
            # In the trailing metadata: sent with the status, ok or not, in the same
            # frame; initial metadata would cost a write of its own before the answer.
            trailing = ((REQUEST_ID, rid),)
            context.set_trailing_metadata(trailing)
            try:
                if type(request) is bytes:  # registered by unary_handlers
                    request = decoded(request_type, request)
                return await method(self, request, context)
            except ServiceError as exc:
                code = status_code(exc)
                if code is grpc.StatusCode.INTERNAL:
                    errors_log.error("%s failed: %s", route, exc)
                await context.abort(code, error_message(exc), trailing)
            except grpc.aio.AbortError:
                code = getattr(context, "code", lambda: None)() or grpc.StatusCode.UNKNOWN
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                errors_log.exception("%s failed", route)
                await context.abort(
                    code, "internal error; the server log has the details", trailing
                )
            finally:
                elapsed = time.perf_counter() - start
                observe(route, code, elapsed)
                log_access(route, route, code, elapsed, rid)

        return call

    return decorate
