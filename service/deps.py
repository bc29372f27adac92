"""Dependencies as ``Annotated`` aliases: what a route needs, read from ``app.state``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from .cache import LoadedModel, ModelCache
from .errors import Forbidden, Unauthorized
from .jobs import JobRunner
from .settings import Settings
from .store import ModelStore


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _store(request: Request) -> ModelStore:
    return request.app.state.store  # type: ignore[no-any-return]


def _cache(request: Request) -> ModelCache:
    return request.app.state.cache  # type: ignore[no-any-return]


def _runner(request: Request) -> JobRunner:
    return request.app.state.runner  # type: ignore[no-any-return]


def _model(request: Request) -> LoadedModel:
    return request.app.state.cache.current()  # type: ignore[no-any-return]


def require_token(request: Request) -> None:
    """401 without a bearer token, 403 with a wrong one (compared in constant time)."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("this call needs the header 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must read 'Bearer <token>'")
    expected: bytes = request.app.state.token
    if not hmac.compare_digest(token.strip().encode(), expected):
        raise Forbidden("the bearer token is not the service's token")


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[ModelStore, Depends(_store)]
CacheDep = Annotated[ModelCache, Depends(_cache)]
RunnerDep = Annotated[JobRunner, Depends(_runner)]
ModelDep = Annotated[LoadedModel, Depends(_model)]
TokenDep = Depends(require_token)
