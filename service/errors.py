"""Domain errors and the one handler that renders them: ``{"detail": ...}`` on the
native API, ``{"error": "..."}`` under ``/v2`` (the Open Inference Protocol's shape).
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .registry import RegistryUnavailableError


class ServiceError(Exception):
    """Base of every error a route raises on purpose; carries its HTTP status."""

    status_code = 500

    def __init__(self, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail if isinstance(detail, str) else repr(detail))
        self.detail = detail
        self.headers = headers


class ModelNotFound(ServiceError):
    status_code = 404


class JobNotFound(ServiceError):
    status_code = 404


class NoModelLoaded(ServiceError):
    status_code = 503


class ModelUnavailable(ServiceError):
    """A stored version that failed verification: never served."""

    status_code = 503


class Conflict(ServiceError):
    status_code = 409


class QueueFull(ServiceError):
    status_code = 429


class PayloadTooLarge(ServiceError):
    status_code = 413


class StoreError(ServiceError):
    status_code = 500


class BadRequest(ServiceError):
    """A V2 request the protocol refuses (bad tensor, bad JSON): a 400."""

    status_code = 400


class UnsupportedEncoding(ServiceError):
    """A request body in a content coding the service cannot decode."""

    status_code = 415

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Accept-Encoding": "gzip, deflate"})


class InvalidInput(ServiceError):
    """A 422 in FastAPI's list form: ``[{"loc": [...], "msg": ..., "type": ...}]``."""

    status_code = 422

    def __init__(self, loc: list[str | int], msg: str, kind: str = "value_error") -> None:
        super().__init__([{"type": kind, "loc": loc, "msg": msg}])
        self.msg = msg


def error_body(exc: ServiceError) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"detail": exc.detail}


def is_v2_path(path: str) -> bool:
    """Whether ``path`` belongs to the Open Inference Protocol (errors as ``{"error"}``)."""
    return path == "/v2" or path.startswith("/v2/")


def error_message(exc: ServiceError) -> str:
    """The error as one sentence, for the V2 shape ``{"error": "..."}``."""
    if isinstance(exc, InvalidInput):
        return exc.msg
    return exc.detail if isinstance(exc.detail, str) else str(exc)


def v2_error_body(exc: ServiceError) -> dict[str, str]:
    return {"error": error_message(exc)}


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    body = v2_error_body(exc) if is_v2_path(request.scope["path"]) else error_body(exc)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


class RegistryDown(ServiceError):
    """The registry database cannot be reached: a 503 worth retrying (serving goes on)."""

    status_code = 503


async def _handle_registry(request: Request, exc: Exception) -> JSONResponse:
    return await _handle(request, RegistryDown(str(exc), {"Retry-After": "5"}))


_UNDECODABLE = "There was an error parsing the body"


async def _handle_http(request: Request, exc: Exception) -> Any:
    """FastAPI's own answer (404, 405, ...), but in the V2 shape under ``/v2``."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNDECODABLE:
        # A body FastAPI cannot decode (e.g. not UTF-8) is still "not JSON": 422 here.
        exc = RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "the body is not valid JSON"}]
        )
        return await _handle_validation(request, exc)
    if exc.status_code == 405:
        exc = StarletteHTTPException(405, exc.detail, {"Allow": _allowed_methods(request)})
    if not is_v2_path(request.scope["path"]):
        return await http_exception_handler(request, exc)
    message = f"{exc.detail}: {request.method} {request.scope['path']}"
    return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)


def _allowed_methods(request: Request) -> str:
    """Every method the OpenAPI schema documents at this path (Starlette names only the
    first matching route's, e.g. ``POST`` for ``/train`` where ``GET`` works too)."""
    state = request.app.state
    table = getattr(state, "allowed_methods", None)
    if table is None:
        table = []
        for template, item in request.app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
            table.append((re.compile(f"^{pattern}$"), {m.upper() for m in item}))
        state.allowed_methods = table
    methods = set().union(*(ms for rx, ms in table if rx.match(request.scope["path"])))
    return ", ".join(sorted(methods))


def _finite(value: Any) -> Any:
    """A JSON-safe copy: non-finite floats (echoed bad input) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# An error echoes its rejected input only when it is small: a 100,000-row table with
# one bad row must not come back whole (megabytes, and seconds to encode).
ECHOED_VALUES = 64
ECHOED_CHARACTERS = 256


def _echoed(value: Any) -> Any:
    """``value`` when small enough to quote back, else a short description of it."""
    budget = [ECHOED_VALUES]

    def small(v: Any) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if isinstance(v, str | bytes):
            return len(v) <= ECHOED_CHARACTERS
        if isinstance(v, dict):
            return all(small(k) and small(x) for k, x in v.items())
        if isinstance(v, list | tuple):
            return all(small(x) for x in v)
        return True

    if small(value):
        return value
    if isinstance(value, list | tuple | dict):
        return f"(not echoed: {type(value).__name__} of {len(value)} entries)"
    return f"(not echoed: {type(value).__name__} of {len(value)} characters)"


def _short(error: dict[str, Any]) -> dict[str, Any]:
    return {**error, "input": _echoed(error["input"])} if "input" in error else error


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 list form, safe when the rejected input holds NaN or Infinity, and
    short when it is large."""
    assert isinstance(exc, RequestValidationError)
    if is_v2_path(request.scope["path"]):  # the protocol knows 400, never 422
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"}, 400)
    errors = [_short(error) for error in exc.errors()]
    not_json = _not_json(request, errors)
    if not_json is not None:
        return JSONResponse({"detail": not_json}, status_code=415)
    return JSONResponse({"detail": _finite(jsonable_encoder(errors))}, status_code=422)


def _not_json(request: Request, errors: list[dict[str, Any]]) -> str | None:
    """Why a body was refused whole when it came as something other than JSON (FastAPI
    reads a JSON body only with a JSON Content-Type): the 415's message, or None."""
    content_type = request.headers.get("content-type")
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return None
    if not any(
        tuple(e.get("loc", ())) == ("body",) and type(e.get("input")) in (bytes, str)
        for e in errors
    ):
        return None
    given = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
    return f"the body must be JSON sent with Content-Type: application/json; it came with {given}"


def install_error_handler(app: FastAPI) -> None:
    """Render every ``ServiceError`` the same way, and validation errors safely."""
    app.add_exception_handler(ServiceError, _handle)
    app.add_exception_handler(RegistryUnavailableError, _handle_registry)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(RequestValidationError, _handle_validation)


class Unauthorized(ServiceError):
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    status_code = 403
