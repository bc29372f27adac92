"""Prometheus metrics, summed across uvicorn workers.

With several workers the command line points ``PROMETHEUS_MULTIPROC_DIR`` at a
fresh folder before any worker starts; each worker then writes its samples to
files there and a scrape answered by any worker adds them all up.
"""

from __future__ import annotations

import contextlib
import os
import re
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from .process import pid_alive

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
INF = float("inf")
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]*_(\d+)\.db$")

HTTP_REQUESTS = Counter(
    "backprop_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "backprop_http_request_duration_seconds",
    "Time from request to the end of the answer, by route template.",
    ["route", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PREDICTIONS = Counter(
    "backprop_predictions_total",
    "Rows answered by /predict and V2 infer, by model version.",
    ["version"],
)
# backprop_training_jobs_total and the job gauges are read from the registry at
# scrape time (registry_metrics), so a job the API reports finished is counted.
TRAINING_DURATION = Histogram(
    "backprop_training_job_duration_seconds",
    "Wall time of training jobs, from start to end, by outcome.",
    ["outcome"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
TRAINING_DUPLICATE_EXECUTIONS = Counter(
    "backprop_training_duplicate_executions_total",
    "Executions of a job after its first (an earlier trainer lost the lease): at-least-once.",
)
TRAINING_LEASES_EXPIRED = Counter(
    "backprop_training_leases_expired_total",
    "Running jobs whose lease ran out, by what became of them (queued, failed, cancelled).",
    ["outcome"],
)
TRAINING_FENCED = Counter(
    "backprop_training_fenced_outcomes_total",
    "Executions whose outcome was refused because the job had moved on to another attempt.",
)
MODEL_INFO = Gauge(
    "backprop_model_info",
    "1 for the model version a worker serves as active, 0 for versions it served before.",
    ["version"],
    # Live workers only: a worker that died (and was replaced) must not keep
    # reporting the version it served; see _forget_dead_workers.
    multiprocess_mode="livemax",
)
MODEL_LOAD_FAILURES = Counter(
    "backprop_model_load_failures_total",
    "Stored versions that failed verification when loaded.",
)


# One process (no PROMETHEUS_MULTIPROC_DIR): requests are tallied in plain numbers and
# folded into the prometheus-client cells when this process is scraped, its only reader.
# Several workers: each request writes the shared files at once, so a scrape answered by
# any worker counts it.
DEFERRED = not os.environ.get(MULTIPROC_ENV)


class _RequestChildren:
    """One (route, method, status)'s counter and duration histogram.

    Deferred: three additions per request, folded into the cells by ``fold``. Otherwise
    the cells are written directly: the same writes ``Counter.inc`` and
    ``Histogram.observe`` make, without their per-call checks or their loop over the
    buckets."""

    def __init__(self, route: str, method: str, status: int) -> None:
        self.counter = HTTP_REQUESTS.labels(route, method, str(status))
        self.histogram = HTTP_DURATION.labels(route, method)
        self.count = 0
        self.sum = 0.0
        self.bounds = list(HTTP_DURATION._upper_bounds)
        self.buckets = [0] * len(self.bounds)
        try:  # prometheus-client's cells; the public calls if a release renames them
            self.count_cell = self.counter._value
            self.sum_cell = self.histogram._sum
            self.bucket_cells = list(self.histogram._buckets)
            self.fast = len(self.bucket_cells) == len(self.bounds) and self.bounds[-1] == INF
        except AttributeError:
            self.fast = False
        self.deferred = DEFERRED and self.fast

    def observe(self, seconds: float) -> None:
        if self.deferred:
            self.count += 1
            self.sum += seconds
            self.buckets[bisect_left(self.bounds, seconds)] += 1  # first bound >= it
        elif self.fast:
            self.count_cell.inc(1)
            self.sum_cell.inc(seconds)
            self.bucket_cells[bisect_left(self.bounds, seconds)].inc(1)
        else:
            self.counter.inc()
            self.histogram.observe(seconds)

    def fold(self) -> None:
        """Move the tallies into the cells (the event loop's thread, so none is lost)."""
        count, self.count = self.count, 0
        if not count:
            return
        total, self.sum = self.sum, 0.0
        buckets, self.buckets = self.buckets, [0] * len(self.bounds)
        self.count_cell.inc(count)
        self.sum_cell.inc(total)
        for cell, n in zip(self.bucket_cells, buckets, strict=True):
            if n:
                cell.inc(n)


_request_children: dict[tuple[str, str, int], _RequestChildren] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration."""
    key = (route, method, status)
    children = _request_children.get(key)
    if children is None:
        children = _request_children[key] = _RequestChildren(route, method, status)
    children.observe(seconds)


class _PredictionCell:
    """Rows answered by one version: tallied when deferred, else written at once."""

    def __init__(self, version: str) -> None:
        child = PREDICTIONS.labels(version)
        self.cell = getattr(child, "_value", None) or child
        self.pending = 0

    def fold(self) -> None:
        rows, self.pending = self.pending, 0
        if rows:
            self.cell.inc(rows)


_prediction_cells: dict[str, _PredictionCell] = {}


def count_predictions(version: str, rows: int) -> None:
    """Count rows answered by one version."""
    cell = _prediction_cells.get(version)
    if cell is None:
        cell = _prediction_cells[version] = _PredictionCell(version)
    if DEFERRED:
        cell.pending += rows
    else:
        cell.cell.inc(rows)


def fold_tallies() -> None:
    """Bring the cells up to date with every request answered so far. Call it in the
    event loop's thread, which alone tallies, before ``exposition``."""
    for children in list(_request_children.values()):
        children.fold()
    for cell in list(_prediction_cells.values()):
        cell.fold()


def set_active_version(previous: str | None, current: str | None) -> None:
    """Move the model-info gauge from one version to another."""
    if previous is not None and previous != current:
        MODEL_INFO.labels(previous).set(0)
    if current is not None:
        MODEL_INFO.labels(current).set(1)


def exposition(extra: bytes = b"") -> tuple[bytes, str]:
    """The text format of every metric, across workers when there are several;
    ``extra`` is appended (the families read from the registry)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        _forget_dead_workers(path)
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry) + extra, CONTENT_TYPE_LATEST
    return generate_latest() + extra, CONTENT_TYPE_LATEST


def _forget_dead_workers(path: str) -> None:
    """Drop the live-only gauges of workers that no longer run (counters stay summed).

    uvicorn replaces a worker that dies without telling the application, so the
    scrape itself notices: a ``gauge_live*_<pid>.db`` file whose process is gone.
    """
    for name in os.listdir(path):
        match = _LIVE_GAUGE_FILE.match(name)
        if match and not pid_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):  # another worker's scrape was first
                _multiprocess.mark_process_dead(int(match.group(1)), path)
