"""Training jobs: queue one, follow it, list them, cancel one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from model.train import TrainConfig

from ..deps import CacheDep, RunnerDep, SettingsDep, StoreDep, TokenDep
from ..errors import Conflict, InvalidInput, JobNotFound, QueueFull
from ..jobs import job_view
from ..limits import SCHEMA_MAX_EPOCHS, bound_epochs
from ..registry import JOB_FINISHED, JobFinishedError, JobRecord, QueueFullError
from ..schemas import Job, JobList, TrainRequest, error_responses
from ..store import ModelStore, new_id, now_iso

router = APIRouter(prefix="/train", tags=["train"])
_AUTH = error_responses(401, 403)

WAIT_POLL_SECONDS = 0.1
CANCEL_WAIT_SECONDS = 3.0


def job_config(body: TrainRequest, max_epochs: int = SCHEMA_MAX_EPOCHS) -> dict[str, Any]:
    """The full, validated configuration of a job: TrainConfig plus the job's own fields."""
    given = body.model_dump(exclude={"data", "activate", "min_test_accuracy"}, exclude_none=True)
    bound_epochs(given, TrainConfig().max_epochs, max_epochs)
    if body.data is not None:
        given.setdefault("features", None)  # every column of the caller's table
    try:
        config = TrainConfig.from_dict(given).to_dict()
    except ValueError as exc:
        raise InvalidInput(["body"], str(exc)) from None
    if body.data is not None:
        config["target"] = "custom"  # the table's labels define the classes
    data = body.data
    return {
        **config,
        "activate": body.activate,
        "min_test_accuracy": body.min_test_accuracy,
        "data": None if data is None else {"rows": len(data.rows), "columns": data.feature_names},
    }


def _view(request: Request, job: JobRecord) -> dict[str, Any]:
    return job_view(job, str(request.url_for("get_job", job_id=job.job_id).path))


def _job(store: ModelStore, job_id: str) -> JobRecord:
    job = store.registry.job(job_id)
    if job is None:
        raise JobNotFound(f"no training job {job_id!r}")
    return job


@router.post(
    "",
    status_code=202,
    response_model=Job,
    dependencies=[TokenDep],
    responses={
        201: {"model": Job, "description": "Finished (with ?wait=true)"},
        **error_responses(401, 403, 413, 429),
    },
)
async def create_job(
    body: TrainRequest,
    request: Request,
    response: Response,
    store: StoreDep,
    runner: RunnerDep,
    cache: CacheDep,
    settings: SettingsDep,
    wait: bool = Query(False, description="Wait for the job to finish (up to a bound)"),
) -> dict[str, Any]:
    """(token) Queue a training job; 202 with its status URL, or 201 when waited for."""
    config = job_config(body, settings.max_train_epochs)
    data = None if body.data is None else orjson.dumps(body.data.model_dump())
    job_id = new_id("job-")
    try:
        await asyncio.to_thread(
            store.registry.create_job, job_id, config, data, now_iso(), settings.train_queue_size
        )
    except QueueFullError as exc:
        raise QueueFull(f"the training queue is full: {exc}", {"Retry-After": "10"}) from None
    runner.wake()
    job = _job(store, job_id)
    if wait:
        deadline = time.monotonic() + settings.train_wait_seconds
        while job.status not in JOB_FINISHED and time.monotonic() < deadline:
            await asyncio.sleep(WAIT_POLL_SECONDS)
            job = await asyncio.to_thread(_job, store, job_id)
        if job.status in JOB_FINISHED:
            response.status_code = 201
            await cache.refresh()  # this worker serves an activated version at once
    view = _view(request, job)
    response.headers["Location"] = view["status_url"]
    return view


@router.get("", response_model=JobList)
async def list_jobs(
    request: Request, store: StoreDep, limit: int = Query(50, ge=1, le=1000)
) -> dict[str, Any]:
    """The most recent jobs, newest first."""
    jobs = await asyncio.to_thread(store.registry.jobs, limit)
    return {"jobs": [_view(request, job) for job in jobs]}


@router.get("/{job_id}", response_model=Job, name="get_job", responses=error_responses(404))
async def get_job(job_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    """One job: status, progress, loss history, and its result or error."""
    return _view(request, await asyncio.to_thread(_job, store, job_id))


@router.delete(
    "/{job_id}",
    response_model=Job,
    dependencies=[TokenDep],
    responses=error_responses(401, 403, 404, 409),
)
async def cancel_job(job_id: str, request: Request, store: StoreDep) -> dict[str, Any]:
    """(token) Cancel a queued or running job; 409 when it has finished."""
    try:
        job = await asyncio.to_thread(store.registry.request_cancel, job_id, now_iso())
    except KeyError:
        raise JobNotFound(f"no training job {job_id!r}") from None
    except JobFinishedError as exc:
        raise Conflict(str(exc)) from None
    deadline = time.monotonic() + CANCEL_WAIT_SECONDS
    while job.status not in JOB_FINISHED and time.monotonic() < deadline:
        await asyncio.sleep(WAIT_POLL_SECONDS)
        job = await asyncio.to_thread(_job, store, job_id)
    return _view(request, job)
