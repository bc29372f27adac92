"""The child process that runs one training job: ``python -m service.trainer STORE JOB ATTEMPT``.

It reads the job from the registry, trains, reports progress (and learns of a
cancel, or of a lost lease) through the registry, publishes the new version's
artefacts whole and verified, and only then registers the version, marks the
job succeeded and (when asked and when the gate passes) activates it, all in
one transaction fenced by the attempt number: an execution that lost its lease
cannot register a second version for the same job. It stops on its own if the
process that started it dies, leaving the lease to run out, so the job is
retried elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
from typing import Any

import orjson

from model.data import Table
from model.train import Progress, TrainConfig, TrainingCancelled, train

from .registry import LeaseLostError
from .settings import Settings
from .store import ModelStore, now_iso, summary_of

log = logging.getLogger("backprop.trainer")

REPORT_SECONDS = 0.2
MAX_HISTORY = 200


class _Reporter:
    """The progress callback: history, throttled registry writes, cancel checks."""

    def __init__(
        self,
        store: ModelStore,
        job_id: str,
        attempt: int,
        parent: int,
        halt: threading.Event | None,
    ) -> None:
        self.store = store
        self.halt = halt  # set by the runner when training in its own process
        self.job_id = job_id
        self.attempt = attempt
        self.parent = parent  # the runner that claimed the job (it may be gone already)
        self.history: list[dict[str, Any]] = []
        self.stride = 1
        self.last_report = 0.0
        self.parent_died = False

    def __call__(self, p: Progress) -> bool:
        if p.epoch % self.stride == 0 or p.epoch == p.max_epochs:
            self.history.append(
                {"epoch": p.epoch, "loss": p.loss, "train_accuracy": p.train_accuracy}
            )
            if len(self.history) > MAX_HISTORY:  # keep every other point, then sample sparser
                self.history = self.history[::2]
                self.stride *= 2
        now = time.monotonic()
        if now - self.last_report < REPORT_SECONDS and p.epoch != p.max_epochs:
            return True
        self.last_report = now
        if self.halt is not None and self.halt.is_set():
            self.parent_died = True  # the runner stopped this attempt and wrote why
            return False
        if self.halt is None and os.getppid() != self.parent:
            self.parent_died = True
            return False
        progress = {"epoch": p.epoch, "max_epochs": p.max_epochs, "loss": p.loss}
        try:
            stop = self.store.registry.update_progress(
                self.job_id, self.attempt, progress, self.history
            )
        except Exception as exc:  # the registry is briefly away: keep training
            log.warning("job %s: progress not recorded (%s)", self.job_id, exc)
            return True
        return not stop


def run_job(
    store: ModelStore, job_id: str, attempt: int, halt: threading.Event | None = None
) -> str:
    """Train one attempt of a job to its end; answer what became of it.

    In a child process ``halt`` is None and the attempt stops when its parent
    dies; in the runner's own process (a worker) the runner sets ``halt``.
    """
    registry = store.registry
    job = registry.job(job_id)
    if job is None or job.status != "running" or job.attempt != attempt:
        return "skipped"
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    options = {k: v for k, v in job.config.items() if k in fields}
    if job.config.get("data"):
        options.pop("target", None)  # a caller's table: its labels define the classes
    config = TrainConfig.from_dict(options)
    raw = registry.job_data(job_id)
    table = Table(**orjson.loads(raw)) if raw else None
    reporter = _Reporter(store, job_id, attempt, os.getppid(), halt)
    try:
        clf = train(config, table, reporter)
    except TrainingCancelled:
        if reporter.parent_died:
            return "abandoned"  # the lease runs out and the job is retried
        current = registry.job(job_id)
        if current is None or current.attempt != attempt or current.status != "running":
            return "superseded"
        registry.finish_job(
            job_id, "cancelled", now_iso(), error="cancelled on request", attempt=attempt
        )
        return "cancelled"
    except ValueError as exc:
        registry.finish_job(job_id, "failed", now_iso(), error=str(exc), attempt=attempt)
        return "failed"
    version, manifest = store.publish(clf)  # whole and verified before any row names it
    gate = job.config.get("min_test_accuracy")
    test_accuracy = clf.metrics.get("test_accuracy")
    passed = gate is None or (test_accuracy is not None and test_accuracy >= gate)
    activated = bool(job.config.get("activate", True)) and passed
    result = {
        "model_version": version,
        "metrics": clf.metrics,
        "activated": activated,
        "gate_passed": passed,
    }
    last = reporter.history[-1] if reporter.history else None
    progress = {"epoch": clf.metrics.get("epochs"), "max_epochs": config.max_epochs}
    progress["loss"] = last["loss"] if last else clf.metrics.get("train_loss")
    try:
        registry.complete_job(
            job_id,
            attempt,
            version,
            manifest["created_at"],
            summary_of(manifest),
            result,
            progress,
            clf.history or reporter.history,
            activated,
            now_iso(),
        )
    except LeaseLostError as exc:
        log.warning("job %s: attempt %d not registered: %s", job_id, attempt, exc)
        return "superseded"
    return "succeeded"


def lower_priority() -> None:
    """Yield the CPU to the server: a training job must not slow the answers down.

    SCHED_IDLE runs the job only when no normal task wants the core; where that
    policy is missing, the lowest nice level comes close.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(19)


def main(argv: list[str] | None = None) -> int:
    lower_priority()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or not args[2].isdigit():
        sys.stderr.write("usage: python -m service.trainer STORE_DIR JOB_ID ATTEMPT\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s trainer: %(message)s")
    root, job_id, attempt = args[0], args[1], int(args[2])
    store = ModelStore.from_settings(Settings(model_dir=root))
    try:
        status = run_job(store, job_id, attempt)
    except Exception as exc:
        store.registry.finish_job(
            job_id, "failed", now_iso(), error=f"training failed: {exc}", attempt=attempt
        )
        raise
    finally:
        store.close()
    log.info("job %s attempt %d: %s", job_id, attempt, status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
