"""``POST /predict`` served straight from ASGI, without the framework's routing,
dependency and response layers: the forward pass takes microseconds, so those
layers would be most of the cost. The FastAPI route of the same path (for the
OpenAPI schema) calls the same ``predict_answer``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from . import metrics
from .errors import ModelNotFound, ServiceError, error_body
from .inference import encode_answer, parse_instances, probabilities
from .middleware import read_body, send_413
from .store import is_valid_version
from .v2.infer import infer_target, serve_infer

_JSON = (b"content-type", b"application/json")


def query_version(query_string: bytes) -> str | None:
    """The ``version=`` of a query string; None when absent."""
    if not query_string:
        return None
    values = parse_qs(query_string.decode("latin-1")).get("version")
    return values[-1] if values and values[-1] else None  # an empty version= is unset


async def predict_answer(state: Any, body: bytes, version: str | None) -> tuple[int, bytes]:
    """Status and encoded body of a predict call."""
    try:
        if version is not None and not is_valid_version(version):
            raise ModelNotFound(f"no version {version!r} in the model store")
        model = await state.cache.get(version)
        X = parse_instances(body, model, state.settings.max_batch_rows)
        answer = encode_answer(model.version, model.classes, probabilities(model, X))
    except ServiceError as exc:
        return exc.status_code, orjson.dumps(error_body(exc))
    metrics.count_predictions(model.version, len(X))
    return 200, answer


class FastPredict:
    """ASGI middleware that answers ``POST /predict`` and V2 infer calls itself."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/predict":
            target = infer_target(scope["path"]) if scope["type"] == "http" else None
            if target is not None and scope["method"] == "POST":
                await serve_infer(scope, receive, send, *target)
            else:
                await self.app(scope, receive, send)
            return
        scope["route_template"] = "/predict"
        state = scope["app"].state
        limit = state.settings.max_body_bytes
        body = await read_body(receive, limit)
        if body is None:
            await send_413(send, limit)
            return
        version = query_version(scope["query_string"])
        status, answer = await predict_answer(state, body, version)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [_JSON, (b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})
