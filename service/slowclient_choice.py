"""Which HTTP protocol class uvicorn runs: the bounded one when httptools is present."""

from __future__ import annotations

import importlib.util


def http_protocol() -> str:
    """``service.slowclient:HeaderTimeoutProtocol``, or uvicorn's h11 without httptools
    (h11 bounds a request head's size on its own, not its time)."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    return "service.slowclient:HeaderTimeoutProtocol"
