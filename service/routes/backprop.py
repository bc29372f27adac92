"""One sample forward and backward, as in the lecture's "Backpropagation by Hand"."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from model.descent import descend_one_sample
from model.network import Network, lecture_network
from model.trace import trace_backprop

from ..deps import CacheDep
from ..dot import trace_to_dot
from ..errors import InvalidInput
from ..schemas import (
    DEFAULT_DESCENT_LEARNING_RATE,
    BackpropRequest,
    BackpropWeights,
    Descent,
    error_responses,
)
from . import dashboard

router = APIRouter(prefix="/backprop", tags=["backprop"])
_ERRORS = error_responses(404, 503)
# format=dot answers Graphviz text and format=html the standalone drawing.
_TRACE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The trace (JSON), Graphviz DOT text with format=dot, "
        "or the standalone drawing with format=html",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/vnd.graphviz": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
}

_RESERVED = frozenset({"x", "label", "version", "weights", "format", "learning_rate"})
_INTEGER = re.compile(r"^[+-]?\d+$", re.ASCII)
# A query value read as a number: plain decimal notation (no "1_0", no other scripts'
# digits, which Python's float() would take).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
MAX_TRACE_PARAMETERS = 10_000


def _label(raw: str) -> int | str:
    """A query label: an integer class index (0/1 for binary) or a class name (a number
    too long to be an index stays a string, refused by ``label_index``)."""
    return int(raw) if len(raw) <= 24 and _INTEGER.match(raw.strip()) else raw


def _named_sample(request: Request, features: tuple[str, ...]) -> list[float] | None:
    named = {k: v for k, v in request.query_params.items() if k not in _RESERVED}
    if not named:
        return None
    if set(named) != set(features):
        raise InvalidInput(
            ["query"], f"name exactly the features {list(features)}; got {sorted(named)}"
        )
    values = [named[name].strip() for name in features]
    if not all(_NUMBER.fullmatch(value) for value in values):
        raise InvalidInput(["query"], "every feature value must be a number, such as 5.1 or -2e-3")
    return [float(value) for value in values]


def _answer(trace: dict[str, Any], version: str, fmt: str) -> Response:
    trace = {"model_version": version, **trace}
    if fmt == "dot":
        return PlainTextResponse(trace_to_dot(trace), media_type="text/vnd.graphviz")
    if fmt == "html":  # the page's script fetches the same query as format=json
        return dashboard.page("trace.html")
    return Response(orjson.dumps(trace), media_type="application/json")


def _trace(
    target: Any, x: list[float], label: Any, learning_rate: float | None, loc: str = "query"
) -> dict[str, Any]:
    try:
        return trace_backprop(target, x, label, learning_rate=learning_rate).to_dict()
    except ValueError as exc:
        raise InvalidInput([loc], str(exc)) from None


@router.get("", response_model=None, responses={**_TRACE, **_ERRORS})
async def backprop_trace(
    request: Request,
    cache: CacheDep,
    label: str = Query(description="0/1 or a class name (binary), class index or name"),
    x: list[float] | None = Query(None, description="The sample, in feature order"),
    version: str | None = Query(None, description="A stored version (default: active)"),
    weights: Literal["lecture"] | None = Query(None, description="The lecture's example"),
    format: Literal["json", "html", "dot"] = Query("json"),
    learning_rate: float | None = Query(None, gt=0, le=10, description="Show one GD step"),
) -> Response:
    """Forward and backward pass of one sample, every intermediate value, a gradient check."""
    target: Any
    features: tuple[str, ...]
    if weights == "lecture":
        if version is not None:
            raise InvalidInput(["query", "version"], "give either weights=lecture or version=")
        target, name, features = lecture_network(), "lecture", ("x1", "x2")
    else:
        model = await cache.get(version or None)
        target, name, features = model.classifier, model.version, model.features
    named = None if weights == "lecture" else _named_sample(request, features)
    if x and named:
        raise InvalidInput(["query"], "give the sample either as x= or by feature name")
    sample = x or named
    if not sample:
        raise InvalidInput(
            ["query", "x"], f"give the sample as x= repeated for {list(features)}", "missing"
        )
    return _answer(_trace(target, sample, _label(label), learning_rate), name, format)


def _custom_network(weights: BackpropWeights) -> Network:
    layers = weights.layers
    size = sum(
        len(layer.weights) * len(layer.weights[0] if layer.weights else ()) for layer in layers
    )
    if size > MAX_TRACE_PARAMETERS:  # the gradient check runs two passes per parameter
        raise InvalidInput(
            ["body", "weights"],
            f"the network has {size} weights; a trace takes at most {MAX_TRACE_PARAMETERS}",
        )
    try:
        return Network.from_spec([layer.model_dump() for layer in layers])
    except ValueError as exc:
        raise InvalidInput(["body", "weights"], str(exc)) from None


def _descent(network: Network, body: BackpropRequest) -> dict[str, Any]:
    rate = body.learning_rate or DEFAULT_DESCENT_LEARNING_RATE
    try:
        return descend_one_sample(network, body.x, body.label, body.steps, rate).to_dict()
    except ValueError as exc:
        raise InvalidInput(["body"], str(exc)) from None


@router.post(
    "",
    response_model=None,
    responses={
        200: {
            "description": "The trace; with steps > 0 also `descent`",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"descent": Descent.model_json_schema()},
                    }
                },
                "text/vnd.graphviz": {"schema": {"type": "string"}},
            },
        },
        **error_responses(415, 422),
    },
)
async def backprop_custom(
    body: BackpropRequest, format: Literal["json", "dot"] = Query("json")
) -> Response:
    """The same trace for the caller's own weights or the lecture's (no standardisation);
    with `steps`, also that many steps of gradient descent on this one sample."""
    if body.weights == "lecture":
        network, name = lecture_network(), "lecture"
    else:
        network, name = _custom_network(body.weights), "custom"
    trace = _trace(network, body.x, body.label, body.learning_rate, loc="body")
    if body.steps > 0 and format == "json":
        trace["descent"] = await asyncio.to_thread(_descent, network, body)
    return _answer(trace, name, format)
