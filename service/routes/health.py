"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
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
async def ready(request: Request, cache: CacheDep, store: StoreDep) -> Health | JSONResponse:
    """200 with the loaded version when a model is loaded; 503 with the reason otherwise.

    A registry that cannot be reached does not make a replica unready: it keeps
    answering from the model in memory, and ``registry`` says what is wrong.
    """
    error = cache.load_error.as_dict() if cache.load_error else None
    registry = _registry_state(request)
    if cache.active is not None:  # ready even when a newer version failed: this one serves
        return Health(
            status="ready", model_version=cache.active.version, load_error=error, registry=registry
        )
    reason = cache.not_ready_reason
    if registry == "ok":
        pending = [j for j in store.registry.jobs(5) if j.status in ("queued", "running")]
        if pending:
            reason += f"; training job {pending[-1].job_id} is {pending[-1].status}"
    else:
        reason += f"; the registry is {registry}"
    body = Health(
        status="not ready", reason=reason, load_error=error, registry=registry
    ).model_dump(exclude_none=True)
    return JSONResponse({**body, "detail": reason}, status_code=503)


def _registry_state(request: Request) -> str:
    """``ok``, or ``unreachable: <why>`` as the pointer watcher last found it."""
    watcher = getattr(request.app.state, "watcher", None)
    if watcher is None or watcher.reachable:
        return "ok"
    return f"unreachable: {watcher.last_error}"
