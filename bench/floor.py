"""The floor: a raw ASGI app with orjson and the NumPy 2-3-1 forward pass.

No framework, no request id, no metrics, no log line: it reads the body, turns
``instances`` into one float64 array (shape and finiteness checked, a 422 otherwise),
runs the two-layer sigmoid network and answers the same JSON shape as ``/predict``.
Any service that validates and computes costs at least this much per request.

    uvicorn bench.floor:app --no-access-log
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
import orjson

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

W1 = np.array([[1.0, -1.0, 3.0], [2.0, 2.0, -1.0]])
B1 = np.array([0.1, -0.2, 0.0])
W2 = np.array([[0.1], [0.5], [-0.1]])
B2 = np.array([0.2])
_JSON = [(b"content-type", b"application/json")]
_INVALID = orjson.dumps({"detail": "instances must be rows of 2 finite numbers"})


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def answer(body: bytes) -> tuple[int, bytes]:
    try:
        X = np.array(orjson.loads(body)["instances"], dtype=np.float64)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return 422, _INVALID
    if X.ndim != 2 or X.shape[1] != 2 or not np.isfinite(X).all():
        return 422, _INVALID
    p = _sigmoid(_sigmoid(X @ W1 + B1) @ W2 + B2)[:, 0]
    predictions = [
        {
            "label": "setosa" if q >= 0.5 else "not-setosa",
            "probabilities": {"not-setosa": 1.0 - q, "setosa": q},
        }
        for q in p.tolist()
    ]
    return 200, orjson.dumps({"model_version": "floor", "predictions": predictions})


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    if scope["method"] == "POST" and scope["path"] == "/predict":
        status, body = answer(b"".join(chunks))
    elif scope["path"] == "/ready":
        status, body = 200, b"{}"
    else:
        status, body = 404, b'{"detail": "Not Found"}'
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
