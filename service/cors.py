"""Cross-origin requests: off unless ``BACKPROP_CORS_ORIGINS`` lists the origins.

Starlette's ``CORSMiddleware`` wraps the whole ASGI edge (inside the request
context, outside the fast predict path), so ``POST /predict`` and V2 infer answer
with the same headers as every FastAPI route. The token travels in a header, never
a cookie, so credentials stay off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.middleware.cors import CORSMiddleware

ALLOWED_METHODS = ("GET", "POST", "DELETE", "OPTIONS")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Content-Encoding", "X-Request-ID")
EXPOSED_HEADERS = ("X-Request-ID", "Location", "Retry-After")


def with_cors(app: Any, origins: Sequence[str]) -> Any:
    """``app`` answering cross-origin calls from ``origins`` only; ``app`` itself when none."""
    if not origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=list(origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        expose_headers=list(EXPOSED_HEADERS),
        allow_credentials=False,
        max_age=600,
    )
