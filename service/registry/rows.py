"""What both registries share without SQLAlchemy: schema facts and rows made records.

``SQLRegistry`` (SQLAlchemy) and ``SQLiteRegistry`` (stdlib ``sqlite3``) read
the same tables, so they select the same columns and build records the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from .records import JOB_FINISHED, ExpiredLease, JobFinishedError, JobRecord, VersionRecord

# The newest migration in migrations/versions (a test holds the two equal); a database
# recorded at this revision is opened without importing Alembic.
HEAD_REVISION = "0002"

# The channel an activation notifies; its payload is the new generation number.
ACTIVE_CHANNEL = "backprop_active_version"

# The columns a record is read from: its fields, in their order.
JOB_COLUMNS = tuple(field.name for field in fields(JobRecord))
VERSION_COLUMNS = tuple(field.name for field in fields(VersionRecord))


def dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def job_record(row: Iterable[Any]) -> JobRecord:
    """A job from the values of ``JOB_COLUMNS``, in that order."""
    job = dict(zip(JOB_COLUMNS, row, strict=True))
    for name in ("config", "history"):
        job[name] = json.loads(job[name])
    for name in ("progress", "result"):
        job[name] = loads(job[name])
    job["cancel_requested"] = bool(job["cancel_requested"])
    job["attempt"] = int(job["attempt"])
    return JobRecord(**job)


def version_record(row: Iterable[Any]) -> VersionRecord:
    """A version from the values of ``VERSION_COLUMNS``, in that order."""
    version = dict(zip(VERSION_COLUMNS, row, strict=True))
    version["summary"] = json.loads(version["summary"])
    return VersionRecord(**version)


# What expire_leases reads of a running job whose lease ran out, for lease_expiry.
EXPIRY_COLUMNS = ("job_id", "attempt", "owner", "cancel_requested")


def lease_expiry(
    row: Iterable[Any], now: str, max_attempts: int
) -> tuple[ExpiredLease, dict[str, Any]]:
    """What becomes of a job whose lease ran out, and the columns to set for it.

    It is queued again, or failed once it has had ``max_attempts``, or cancelled
    when a cancel was asked for.
    """
    job_id, attempt, owner, cancel = row
    why = f"the trainer {owner} stopped renewing its lease (attempt {attempt})"
    values: dict[str, Any]
    if cancel:
        outcome, values = "cancelled", {"error": f"cancelled on request; {why}"}
    elif attempt >= max_attempts:
        outcome = "failed"
        values = {"error": f"{why}; no attempt left of {max_attempts}"}
    else:
        outcome, values = "queued", {"error": f"{why}; queued again"}
    if outcome == "queued":
        values |= {"status": "queued", "owner": None, "owner_pid": None}
        values |= {"progress": None, "history": "[]", "started_at": None}
    else:
        values |= {"status": outcome, "finished_at": now, "data": None}
    values["lease_expires_at"] = None
    return ExpiredLease(job_id, int(attempt), owner, outcome), values


def cancel_values(job_id: str, status: str | None, now: str) -> dict[str, Any]:
    """The columns a cancel sets on a job in ``status`` (None: there is no such job).

    A queued job is cancelled at once; a running one is asked to stop. Raises
    KeyError for no job, JobFinishedError for a finished one.
    """
    if status is None:
        raise KeyError(job_id)
    if status in JOB_FINISHED:
        raise JobFinishedError(f"job {job_id} has already {status}")
    if status == "queued":
        return {
            "status": "cancelled",
            "finished_at": now,
            "data": None,
            "error": "cancelled before it started",
        }
    return {"cancel_requested": 1}


def pid_of(owner: str) -> int | None:
    """The pid in an owner's name (``host:pid:start``), if it has one."""
    parts = owner.split(":")
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def utc_now() -> str:
    """The current time as ISO 8601 in UTC (what ``set_active`` records by default)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
