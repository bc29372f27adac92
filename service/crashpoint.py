"""TEST ONLY: a pause in the middle of writing a model, to widen the crash window.

``BACKPROP_TEST_WRITE_DELAY_SECONDS`` (0, off, by default) makes every model write
sleep after the weights file is written and before the manifest is, so a test can
``kill -9`` the writer while the version folder is half-written and check that the
store still opens, never serves it, and takes the next write. Never set it in
production: it only slows writes down.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("backprop.crashpoint")

ENV = "BACKPROP_TEST_WRITE_DELAY_SECONDS"


def write_delay() -> float:
    """The configured pause in seconds (read from the environment at each write)."""
    try:
        return max(0.0, float(os.environ.get(ENV, "0") or 0))
    except ValueError:
        return 0.0


def pause_mid_write() -> None:
    """Sleep for the test-only delay, if one is set."""
    delay = write_delay()
    if delay > 0:
        log.warning("TEST ONLY (%s): pausing %.1f s in the middle of a model write", ENV, delay)
        time.sleep(delay)
