"""The child process that runs one training job: ``python -m service.trainer STORE JOB``.

It reads the job from the registry, trains, reports progress (and learns of a
cancel) through the registry, stores the new version and, when asked and when
the gate passes, activates it. It stops on its own if the server that started
it dies, so a killed server never leaves a job training unseen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from typing import Any

import orjson

from model.data import Table
from model.train import Progress, TrainConfig, TrainingCancelled, train

from .store import ModelStore, now_iso

log = logging.getLogger("backprop.trainer")

REPORT_SECONDS = 0.2
MAX_HISTORY = 200


class _Reporter:
    """The progress callback: history, throttled registry writes, cancel checks."""

    def __init__(self, store: ModelStore, job_id: str, parent: int | None) -> None:
        self.store = store
        self.job_id = job_id
        self.parent = parent  # the worker that claimed the job (it may be gone already)
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
        if os.getppid() != self.parent:
            self.parent_died = True
            return False
        progress = {"epoch": p.epoch, "max_epochs": p.max_epochs, "loss": p.loss}
        cancel = self.store.registry.update_progress(
            self.job_id, progress, self.history, time.time()
        )
        return not cancel


def run_job(store: ModelStore, job_id: str) -> str:
    """Train one job to its end; answer its final status."""
    registry = store.registry
    job = registry.job(job_id)
    if job is None or job.status != "running":
        return "skipped"
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    options = {k: v for k, v in job.config.items() if k in fields}
    if job.config.get("data"):
        options.pop("target", None)  # a caller's table: its labels define the classes
    config = TrainConfig.from_dict(options)
    raw = registry.job_data(job_id)
    table = Table(**orjson.loads(raw)) if raw else None
    reporter = _Reporter(store, job_id, job.owner_pid)
    try:
        clf = train(config, table, reporter)
    except TrainingCancelled:
        status, why = (
            ("failed", "the server that ran the job exited")
            if reporter.parent_died
            else ("cancelled", "cancelled on request")
        )
        registry.finish_job(job_id, status, now_iso(), error=why)
        return status
    except ValueError as exc:
        registry.finish_job(job_id, "failed", now_iso(), error=str(exc))
        return "failed"
    version = store.save(clf)
    gate = job.config.get("min_test_accuracy")
    test_accuracy = clf.metrics.get("test_accuracy")
    passed = gate is None or (test_accuracy is not None and test_accuracy >= gate)
    activated = bool(job.config.get("activate", True)) and passed
    if activated:
        registry.set_active(version)
    result = {
        "model_version": version,
        "metrics": clf.metrics,
        "activated": activated,
        "gate_passed": passed,
    }
    last = reporter.history[-1] if reporter.history else None
    progress = {"epoch": clf.metrics.get("epochs"), "max_epochs": config.max_epochs}
    progress["loss"] = last["loss"] if last else clf.metrics.get("train_loss")
    registry.update_progress(job_id, progress, clf.history or reporter.history, time.time())
    registry.finish_job(job_id, "succeeded", now_iso(), result=result)
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
    if len(args) != 2:
        sys.stderr.write("usage: python -m service.trainer STORE_DIR JOB_ID\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s trainer: %(message)s")
    store = ModelStore(args[0])
    try:
        status = run_job(store, args[1])
    except Exception as exc:
        store.registry.finish_job(args[1], "failed", now_iso(), error=f"training failed: {exc}")
        raise
    finally:
        store.close()
    log.info("job %s %s", args[1], status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
