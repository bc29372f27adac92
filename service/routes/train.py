"""Training jobs: queue one, follow it, list them, cancel one."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Body, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

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
EVENTS_POLL_SECONDS = 0.2
EVENTS_SHUTDOWN_GRACE_SECONDS = 2.0  # well under uvicorn's timeout_graceful_shutdown (8 s)
EVENTS_RETRY_MS = 2000
_EPOCH_ID = re.compile(r"^[0-9]{1,12}$")


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
        **error_responses(401, 403, 413, 415, 429),
    },
)
async def create_job(
    request: Request,
    response: Response,
    store: StoreDep,
    runner: RunnerDep,
    cache: CacheDep,
    settings: SettingsDep,
    body: Annotated[TrainRequest | None, Body()] = None,
    wait: bool = Query(False, description="Wait for the job to finish (up to a bound)"),
) -> dict[str, Any]:
    """(token) Queue a training job; 202 with its status URL, or 201 when waited for.
    No body (or ``{}``) is the default job: every field is optional."""
    body = body or TrainRequest()
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


def _job_json(request: Request, job: JobRecord) -> str:
    """The job exactly as ``GET /train/{job_id}`` answers it, as JSON text."""
    view = Job.model_validate(_view(request, job)).model_dump(mode="json")
    return orjson.dumps(view).decode()


def _resume_after(job: JobRecord, last_event_id: str | None) -> int:
    """The last epoch the client has: from ``Last-Event-ID`` on a reconnect, else the
    newest point of the history the ``job`` event carries."""
    if last_event_id is not None and _EPOCH_ID.match(last_event_id.strip()):
        return int(last_event_id)  # anything else (a client's own id) is ignored
    return max((int(point["epoch"]) for point in job.history), default=0)


async def _job_events(
    request: Request, store: ModelStore, job: JobRecord, after: int, shutdown: anyio.Event
) -> AsyncIterator[ServerSentEvent]:
    """``job``, then one ``progress`` per new history point, then ``end``. When the
    server shuts down the stream ends cleanly without ``end`` (the job is not over:
    a client may reconnect, to another replica, with ``Last-Event-ID``)."""
    yield ServerSentEvent(_job_json(request, job), event="job", retry=EVENTS_RETRY_MS)
    while True:
        max_epochs = (job.progress or {}).get("max_epochs") or job.config.get("max_epochs")
        for point in job.history:
            epoch = int(point["epoch"])
            if epoch <= after:
                continue
            after = epoch
            data = {
                "epoch": epoch,
                "max_epochs": max_epochs,
                "loss": point.get("loss"),
                "train_accuracy": point.get("train_accuracy"),
            }
            yield ServerSentEvent(orjson.dumps(data).decode(), event="progress", id=str(epoch))
        if job.status in JOB_FINISHED:
            yield ServerSentEvent(_job_json(request, job), event="end")
            return
        with anyio.move_on_after(EVENTS_POLL_SECONDS):
            await shutdown.wait()
        if shutdown.is_set():
            return
        latest = await asyncio.to_thread(store.registry.job, job.job_id)
        if latest is None:  # removed from the registry meanwhile: nothing more to tell
            return
        job = latest


def _ping() -> ServerSentEvent:
    return ServerSentEvent(comment="ping")


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "A server-sent event stream: `job` (the job as GET /train/{job_id} "
            "answers it), one `progress` per new history point (`epoch`, `max_epochs`, "
            "`loss`, `train_accuracy`; its id is the epoch), then `end` (the finished job), "
            "then the stream closes. A `: ping` comment every 10 s "
            "(BACKPROP_EVENTS_PING_SECONDS) keeps proxies open.",
            # Each server-sent event (a `: ping` comment is none): its name, its JSON
            # text as `data`, the epoch as `id` for progress, and the reconnect delay.
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "event": {"type": "string", "enum": ["job", "progress", "end"]},
                            "data": {"type": "string"},
                            "id": {"type": "string"},
                            "retry": {"type": "integer"},
                        },
                        "required": ["data"],
                    }
                }
            },
        },
        **error_responses(404),
    },
)
async def job_events(
    job_id: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    last_event_id: str | None = Header(
        None, description="Resume after this epoch (browsers send it when they reconnect)"
    ),
) -> EventSourceResponse:
    """Follow a job live: its progress as server-sent events until it finishes."""
    job = await asyncio.to_thread(_job, store, job_id)
    shutdown = anyio.Event()  # set by sse-starlette when uvicorn starts to shut down
    return EventSourceResponse(
        _job_events(request, store, job, _resume_after(job, last_event_id), shutdown),
        ping=settings.events_ping_seconds,
        ping_message_factory=_ping,
        shutdown_event=shutdown,
        shutdown_grace_period=EVENTS_SHUTDOWN_GRACE_SECONDS,
    )
