"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import CacheDep, StoreDep
from ..schemas import Health

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model_exclude_none=True)
async def live() -> Health:
    """200 while the process serves."""
    return Health(status="live")


@router.get(
    "/ready",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health}},
)
async def ready(cache: CacheDep, store: StoreDep) -> Health | JSONResponse:
    """200 with the loaded version when a model is loaded; 503 with the reason otherwise."""
    error = cache.load_error.as_dict() if cache.load_error else None
    if cache.active is not None:  # ready even when a newer version failed: this one serves
        return Health(status="ready", model_version=cache.active.version, load_error=error)
    reason = cache.not_ready_reason
    pending = [j for j in store.registry.jobs(5) if j.status in ("queued", "running")]
    if pending:
        reason += f"; training job {pending[-1].job_id} is {pending[-1].status}"
    body = Health(status="not ready", reason=reason, load_error=error).model_dump(exclude_none=True)
    return JSONResponse({**body, "detail": reason}, status_code=503)
