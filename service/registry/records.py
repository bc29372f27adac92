"""What the registry hands out: version and job records, and its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JOB_ACTIVE = ("queued", "running")
JOB_FINISHED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class VersionRecord:
    """One stored version as the registry knows it."""

    version: str
    created_at: str
    summary: dict[str, Any]
    status: str  # "ok" or "invalid"
    reason: str | None
    job_id: str | None = None  # the training job that registered it, if any


@dataclass(frozen=True)
class ActivePointer:
    """The active version and the generation number every activation bumps."""

    version: str | None
    generation: int


@dataclass(frozen=True)
class JobRecord:
    """One training job.

    ``owner`` names the process holding the job's lease (``host:pid:start``);
    ``attempt`` counts the claims so far, and fences every write of an
    execution: a write carrying an older attempt is refused.
    """

    job_id: str
    status: str
    config: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: dict[str, Any] | None
    history: list[dict[str, Any]]
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    owner: str | None
    attempt: int
    heartbeat_at: float | None
    lease_expires_at: float | None


@dataclass(frozen=True)
class ExpiredLease:
    """A running job whose lease ran out, and what became of it."""

    job_id: str
    attempt: int
    owner: str | None
    outcome: str  # "queued" (retried) or "failed" (out of attempts)


class QueueFullError(Exception):
    """The queue of training jobs holds as many as it may."""


class JobFinishedError(Exception):
    """The job has already finished; it cannot be cancelled."""


class LeaseLostError(Exception):
    """The execution no longer holds the job: its lease expired and the job moved on."""


class SchemaOutdatedError(Exception):
    """The registry database's schema is older (or newer) than this code expects."""


class RegistryUnavailableError(Exception):
    """The registry database cannot be reached."""
