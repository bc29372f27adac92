"""Domain errors and the one handler that renders them as ``{"detail": ...}``."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


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


class InvalidInput(ServiceError):
    """A 422 in FastAPI's list form: ``[{"loc": [...], "msg": ..., "type": ...}]``."""

    status_code = 422

    def __init__(self, loc: list[str | int], msg: str, kind: str = "value_error") -> None:
        super().__init__([{"type": kind, "loc": loc, "msg": msg}])
        self.msg = msg


def error_body(exc: ServiceError) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"detail": exc.detail}


async def _handle(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse(error_body(exc), status_code=exc.status_code, headers=exc.headers)


def _finite(value: Any) -> Any:
    """A JSON-safe copy: non-finite floats (echoed bad input) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def _handle_validation(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 list form, safe when the rejected input holds NaN or Infinity."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)


def install_error_handler(app: FastAPI) -> None:
    """Render every ``ServiceError`` the same way, and validation errors safely."""
    app.add_exception_handler(ServiceError, _handle)
    app.add_exception_handler(RequestValidationError, _handle_validation)


class Unauthorized(ServiceError):
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ServiceError):
    status_code = 403
