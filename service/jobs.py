"""Training jobs in each worker: claim the next queued job through the registry
(so one job trains at a time across every worker and process), run it in a child
process (``python -m service.trainer``) so serving never waits on it, keep its
heartbeat while it runs, and fail it if the child dies without finishing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

from . import metrics
from .process import pid_alive
from .registry import JobRecord
from .store import ModelStore, now_iso

log = logging.getLogger("backprop.jobs")

POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 1.0
KILL_AFTER_SECONDS = 5.0


class JobRunner:
    """Claims and runs training jobs; one background task per worker."""

    def __init__(self, store: ModelStore, stale_seconds: float) -> None:
        self.store = store
        self.stale_seconds = stale_seconds
        self._wake = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._job: JobRecord | None = None

    def wake(self) -> None:
        """Look for a queued job now rather than at the next poll."""
        self._wake.set()

    def reap_stale(self) -> list[str]:
        """Fail running jobs whose process died (e.g. after a kill -9)."""
        stale = self.store.registry.fail_stale_jobs(
            now_iso(), time.time(), self.stale_seconds, pid_alive
        )
        for job_id in stale:
            log.warning("job %s was running in a process that died: marked failed", job_id)
        return stale

    async def run_forever(self) -> None:
        """Poll for work until cancelled."""
        while True:
            try:
                await asyncio.to_thread(self.reap_stale)
                job = await asyncio.to_thread(
                    self.store.registry.claim_job, os.getpid(), now_iso(), time.time()
                )
                if job is not None:
                    await self._run(job)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the job runner failed; will retry")
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _run(self, job: JobRecord) -> None:
        log.info("job %s: training started", job.job_id)
        started = time.perf_counter()
        self._job = job
        self._proc = proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.trainer",
            str(self.store.root),
            job.job_id,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        output = asyncio.ensure_future(proc.communicate())
        try:
            while not output.done():
                await asyncio.wait({output}, timeout=HEARTBEAT_SECONDS)
                await asyncio.to_thread(self.store.registry.heartbeat, job.job_id, time.time())
            _, stderr = output.result()
        finally:
            self._proc, self._job = None, None
        if await asyncio.to_thread(self._fail_if_unfinished, job.job_id, proc.returncode, stderr):
            log.error("job %s: the training process exited with %s", job.job_id, proc.returncode)
        record = await asyncio.to_thread(self.store.registry.job, job.job_id)
        outcome = record.status if record else "failed"
        metrics.TRAINING_DURATION.labels(outcome).observe(time.perf_counter() - started)
        log.info("job %s: %s", job.job_id, outcome)

    def _fail_if_unfinished(self, job_id: str, code: int | None, stderr: bytes) -> bool:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        error = f"the training process exited with code {code} {tail[0]}".strip()
        return self.store.registry.finish_job(job_id, "failed", now_iso(), error=error)

    async def shutdown(self, reason: str = "the server shut down") -> None:
        """Cancel the job this worker runs, if any, and stop its process."""
        proc, job = self._proc, self._job
        if proc is None or job is None:
            return
        self.store.registry.finish_job(job.job_id, "cancelled", now_iso(), error=reason)
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), KILL_AFTER_SECONDS)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.info("job %s: cancelled (%s)", job.job_id, reason)


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
    }
