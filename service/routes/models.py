"""The active model's metadata, the stored versions, and activation (rollback)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from ..cache import LoadedModel
from ..deps import CacheDep, ModelDep, SettingsDep, StoreDep, TokenDep
from ..errors import Conflict, ModelNotFound
from ..registry import VersionRecord
from ..schemas import ModelMetadata, error_responses
from ..store import ModelStore

router = APIRouter(tags=["models"], responses=error_responses(404))


def _metadata(record: VersionRecord, active: str | None) -> dict[str, Any]:
    meta = {"version": record.version, **record.summary, "active": record.version == active}
    meta["status"] = record.status
    if record.reason:
        meta["reason"] = record.reason
    return meta


def _record(store: ModelStore, version: str) -> VersionRecord:
    record = store.record(version)
    if record is None:
        raise ModelNotFound(f"no version {version!r} in the model store")
    return record


@router.get(
    "/model",
    response_model=ModelMetadata,
    response_model_exclude_none=True,
    responses=error_responses(503),
)
async def active_model(model: ModelDep, cache: CacheDep, settings: SettingsDep) -> dict[str, Any]:
    """The served model's metadata, and `load_error` while a newer active version fails."""
    meta = {**model.metadata, "name": settings.model_name, "active": True, "status": "ok"}
    if cache.load_error is not None:
        meta["load_error"] = cache.load_error.as_dict()
    return meta


@router.get("/models", response_model=list[ModelMetadata], response_model_exclude_none=True)
async def list_models(store: StoreDep) -> list[dict[str, Any]]:
    """Every stored version, newest first, with `active` and `status`."""
    records, active = await asyncio.to_thread(
        lambda: (store.registry.versions(), store.registry.active_version())
    )
    return [_metadata(r, active) for r in records]


@router.get("/models/{version}", response_model=ModelMetadata, response_model_exclude_none=True)
async def get_model(version: str, store: StoreDep) -> dict[str, Any]:
    """One stored version's metadata; 404 if unknown."""
    record = _record(store, version)
    return _metadata(record, store.registry.active_version())


@router.post(
    "/models/{version}/activate",
    response_model=ModelMetadata,
    response_model_exclude_none=True,
    dependencies=[TokenDep],
    responses=error_responses(401, 403, 409),
)
async def activate(version: str, store: StoreDep, cache: CacheDep) -> dict[str, Any]:
    """(token) Make a stored version the active one, e.g. a rollback."""
    record = _record(store, version)
    if record.status != "ok":
        raise Conflict(
            f"version {version} failed verification and cannot be served: {record.reason}"
        )
    try:
        loaded: LoadedModel = await cache.get(version)
    except Exception as exc:
        detail = getattr(exc, "detail", str(exc))
        raise Conflict(f"version {version} cannot be activated: {detail}") from exc
    await asyncio.to_thread(store.registry.set_active, version)
    cache.install(loaded)
    return _metadata(_record(store, version), version)
