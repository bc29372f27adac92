"""Training jobs across machines: claim a job under a lease, train it in a child
process (``python -m service.trainer``) so serving never waits on it, renew the
lease while it runs, and enforce the job's wall-clock limit.

A lease names its owner (``host:pid:start``) and runs out by the registry's
clock. A trainer that dies stops renewing it; any runner then re-queues the job
(or fails it after ``job_max_attempts``), so no job stays "running" forever.
Execution is at least once; every write of an execution carries its attempt
number, so only the current attempt can register the job's one version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from typing import Any, Protocol

from . import metrics
from .registry import JobRecord
from .settings import Settings
from .store import ModelStore, now_iso

log = logging.getLogger("backprop.jobs")

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 1.0
KILL_AFTER_SECONDS = 5.0
STARTED = time.time()


def owner_id() -> str:
    """This process as a lease owner: host, pid and start time (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{int(STARTED)}"


class JobRunner:
    """Claims and runs training jobs (``trains``), and re-queues those whose lease ran out."""

    def __init__(
        self,
        store: ModelStore,
        settings: Settings,
        trains: bool = True,
        in_process: bool = False,
    ) -> None:
        self.store = store
        self.settings = settings
        self.trains = trains
        self.in_process = in_process  # train in a thread (a worker) or a child process
        self.owner = owner_id()
        self._wake = asyncio.Event()
        self._execution: _Execution | None = None
        self._job: JobRecord | None = None

    def wake(self) -> None:
        """Look for a queued job now rather than at the next poll."""
        self._wake.set()

    def reap_stale(self) -> list[str]:
        """Re-queue or fail running jobs whose lease ran out (e.g. their trainer was killed)."""
        registry = self.store.registry
        expired = registry.expire_leases(now_iso(), self.settings.job_max_attempts)
        for lease in expired:
            log.warning(
                "job %s: the lease of attempt %d (%s) ran out: %s",
                lease.job_id,
                lease.attempt,
                lease.owner,
                lease.outcome,
            )
            metrics.TRAINING_LEASES_EXPIRED.labels(lease.outcome).inc()
        return [lease.job_id for lease in expired]

    async def _reap_quietly(self) -> None:
        try:
            await asyncio.to_thread(self.reap_stale)
        except Exception as exc:
            log.warning("re-queueing expired jobs failed (%s); will retry", exc)

    def fail_unleased(self) -> list[str]:
        """At start: fail running jobs left without a lease by the single-host schema."""
        failed = self.store.registry.fail_unleased_jobs(now_iso())
        for job_id in failed:
            log.warning("job %s was running in a process that died: marked failed", job_id)
        return failed

    def _claim(self) -> JobRecord | None:
        return self.store.registry.claim_job(
            self.owner,
            now_iso(),
            self.settings.job_stale_seconds,
            self.settings.max_running_jobs,
        )

    async def run_forever(self) -> None:
        """Poll for work until cancelled."""
        while True:
            try:
                await asyncio.to_thread(self.reap_stale)
                job = await asyncio.to_thread(self._claim) if self.trains else None
                if job is not None:
                    await self._run(job)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("the job runner failed (%s); will retry", exc)
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _run(self, job: JobRecord) -> None:
        if job.attempt > 1:
            metrics.TRAINING_DUPLICATE_EXECUTIONS.inc()
        log.info("job %s: training started (attempt %d, %s)", job.job_id, job.attempt, self.owner)
        started = time.perf_counter()
        limit = self.settings.job_timeout_seconds
        self._job = job
        execution: _Execution = (
            _ThreadExecution(self.store, job)
            if self.in_process
            else await _ChildExecution.start(self.store, job)
        )
        self._execution = execution
        stop_reason: str | None = None
        try:
            while not execution.done.done():
                await asyncio.wait({execution.done}, timeout=HEARTBEAT_SECONDS)
                if execution.done.done():
                    break
                if time.perf_counter() - started > limit:
                    stop_reason = f"ran longer than the limit of {limit:g} s"
                    stop_reason += " (BACKPROP_JOB_TIMEOUT_SECONDS)"
                    await asyncio.to_thread(
                        self.store.registry.finish_job,
                        job.job_id,
                        "cancelled",
                        now_iso(),
                        error=f"cancelled: the job {stop_reason}",
                        attempt=job.attempt,
                    )
                elif not await self._renew(job):
                    stop_reason = "lost its lease (another trainer holds the job now)"
                    metrics.TRAINING_FENCED.inc()
                else:  # other trainers' dead jobs are queued again meanwhile
                    await self._reap_quietly()
                if stop_reason:
                    log.warning(
                        "job %s: stopping attempt %d: it %s", job.job_id, job.attempt, stop_reason
                    )
                    await execution.stop()
            error = await execution.outcome()
        finally:
            self._execution, self._job = None, None
        if error is not None and await asyncio.to_thread(self._fail_if_unfinished, job, error):
            log.error("job %s: %s", job.job_id, error)
        record = await asyncio.to_thread(self.store.registry.job, job.job_id)
        outcome = record.status if record else "failed"
        if record is not None and record.attempt != job.attempt:
            outcome = "superseded"
        metrics.TRAINING_DURATION.labels(outcome).observe(time.perf_counter() - started)
        log.info("job %s: %s", job.job_id, outcome)

    async def _renew(self, job: JobRecord) -> bool:
        """Renew the lease; False only when another attempt holds the job now.

        A refused renewal of a job this attempt has just finished itself is no
        loss, and a database that cannot be reached is not a lost lease (yet).
        """
        registry = self.store.registry
        try:
            if await asyncio.to_thread(
                registry.heartbeat, job.job_id, job.attempt, self.settings.job_stale_seconds
            ):
                return True
            current = await asyncio.to_thread(registry.job, job.job_id)
        except Exception as exc:
            log.warning("job %s: renewing the lease failed (%s); will retry", job.job_id, exc)
            return True
        return current is not None and current.attempt == job.attempt and current.status != "queued"

    def _fail_if_unfinished(self, job: JobRecord, error: str) -> bool:
        return self.store.registry.finish_job(
            job.job_id, "failed", now_iso(), error=error, attempt=job.attempt
        )

    async def release(self) -> None:
        """Give the running job back (a trainer stopping): another trainer retries it now."""
        execution, job = self._execution, self._job
        if execution is None or job is None:
            return
        await execution.stop()
        await asyncio.to_thread(self.store.registry.release_lease, job.job_id, job.attempt)
        log.info("job %s: attempt %d given back (the trainer stops)", job.job_id, job.attempt)

    async def shutdown(self, reason: str = "the server shut down") -> None:
        """Cancel the job this process runs, if any, and stop its training process."""
        execution, job = self._execution, self._job
        if execution is None or job is None:
            return
        self.store.registry.finish_job(
            job.job_id, "cancelled", now_iso(), error=reason, attempt=job.attempt
        )
        await execution.stop()
        log.info("job %s: cancelled (%s)", job.job_id, reason)


class _Execution(Protocol):
    """One attempt of a job, training somewhere: ``done`` resolves when it ends."""

    done: asyncio.Future[Any]

    async def stop(self) -> None: ...
    async def outcome(self) -> str | None: ...


class _ChildExecution:
    """Training in ``python -m service.trainer``: serving never waits on its CPU."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.done: asyncio.Future[Any] = asyncio.ensure_future(proc.communicate())

    @classmethod
    async def start(cls, store: ModelStore, job: JobRecord) -> _ChildExecution:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.trainer",
            str(store.root),
            job.job_id,
            str(job.attempt),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), KILL_AFTER_SECONDS)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def outcome(self) -> str | None:
        _, stderr = await self.done
        if self.proc.returncode == 0:
            return None
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return f"the training process exited with code {self.proc.returncode} {tail[0]}".strip()


class _ThreadExecution:
    """Training in a thread of this process (a worker, which serves nothing).

    It saves a process start per job; ``stop`` asks the training loop to end at
    its next progress report.
    """

    def __init__(self, store: ModelStore, job: JobRecord) -> None:
        from .trainer import run_job

        self.halt = threading.Event()
        self.done: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.to_thread(run_job, store, job.job_id, job.attempt, self.halt)
        )

    async def stop(self) -> None:
        self.halt.set()
        with contextlib.suppress(Exception):
            await self.done

    async def outcome(self) -> str | None:
        try:
            await self.done
        except Exception as exc:
            log.exception("training failed")
            return f"training failed: {exc}"
        return None


def job_view(job: JobRecord, status_url: str) -> dict[str, Any]:
    """The JSON answer for one job."""
    return {
        "job_id": job.job_id,
        "status": job.status,
        "status_url": status_url,
        "config": job.config,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": job.progress,
        "history": job.history,
        "result": job.result,
        "error": job.error,
        "attempt": job.attempt,
    }
