"""Each process follows the registry's active pointer: NOTIFY-woken poll, then a cache refresh.

The ``PointerWatcher`` threads keep the latest pointer in memory; this task
waits on it and asks the cache to load and swap in a new version when the
generation changes (and, as a safety net, every ``RECHECK_SECONDS``). Requests
never wait on any of it: they read the model the cache holds.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .cache import ModelCache
from .registry import PointerWatcher

log = logging.getLogger("backprop.follow")

RECHECK_SECONDS = 10.0


async def follow_pointer(cache: ModelCache, watcher: PointerWatcher) -> None:
    """Refresh ``cache`` whenever the watcher sees a new generation (a background task)."""
    generation: int | None = None
    last_refresh = time.monotonic()
    while True:
        pointer = await asyncio.to_thread(
            watcher.wait_for_change, generation, watcher.poll_seconds * 4
        )
        changed = pointer is not None and pointer.generation != generation
        if not changed and time.monotonic() - last_refresh < RECHECK_SECONDS:
            continue
        try:
            await cache.refresh()
        except Exception as exc:  # the registry went away between the poll and the read
            log.warning("following the active version failed (%s); will retry", exc)
            await asyncio.sleep(watcher.poll_seconds)
            continue
        last_refresh = time.monotonic()
        if pointer is not None:
            generation = pointer.generation
