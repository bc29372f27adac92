"""``backprop-serve worker``: train queued jobs and serve nothing.

Trainers and API replicas scale apart: a worker opens the store (registry and
artefacts by URL), claims jobs under leases and trains them in a thread of its
own (no API to keep responsive, so no process start per job), and exposes only
Prometheus metrics on its port (for the scraper and a liveness probe). On
SIGTERM it gives its running job back (the lease is released, so another worker
takes it at once) instead of cancelling the user's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from .jobs import JobRunner
from .settings import Settings
from .store import ModelStore

log = logging.getLogger("backprop.worker")


async def run_worker(settings: Settings) -> None:
    """Run the job loop until SIGTERM or SIGINT."""
    store = await asyncio.to_thread(ModelStore.from_settings, settings)
    runner = JobRunner(store, settings, trains=True, in_process=True)
    await asyncio.to_thread(runner.fail_unleased)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %s: training jobs from %s", runner.owner, store.registry.url)
    task = asyncio.create_task(runner.run_forever())
    try:
        await stop.wait()
    finally:
        await runner.release()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
    log.info("worker %s stopped", runner.owner)


def serve_metrics(settings: Settings) -> None:
    """Prometheus' text format on the worker's port (every path answers it)."""
    from prometheus_client import start_http_server

    start_http_server(settings.port, addr=settings.host)
    log.info("worker metrics on http://%s:%d/metrics", settings.host, settings.port)
