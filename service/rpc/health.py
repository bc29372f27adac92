"""``grpc.health.v1.Health``: SERVING while a model is loaded, for gRPC readiness probes.

The status is read from the worker's ``ModelCache`` on every call, so it is never
stale and needs no hook into the cache. It answers for the whole server (``""``)
and for ``inference.GRPCInferenceService``; NOT_SERVING while shutting down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..errors import BadRequest
from .calls import decoded, observed, unary_handler
from .servicer import SERVICE as INFERENCE_SERVICE

SERVICE = "grpc.health.v1.Health"
SERVICES = ("", INFERENCE_SERVICE)
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


def handlers(servicer: HealthServicer) -> Any:
    """Check and Watch, taking the request bytes (see ``calls.unary_handlers``)."""
    serialize = health_pb2.HealthCheckResponse.SerializeToString
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Check": unary_handler(servicer.Check),
            "Watch": grpc.unary_stream_rpc_method_handler(
                servicer.Watch, response_serializer=serialize
            ),
        },
    )


class HealthServicer(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """Check and Watch over the cache's active model."""

    def __init__(self, state: Any, watch_interval: float) -> None:
        self.state = state
        self.watch_interval = watch_interval
        self.stopping = False

    def status(self, service: str) -> Any:
        if service not in SERVICES:
            return _UNKNOWN
        if self.stopping or self.state.cache.active is None:
            return _NOT_SERVING
        return _SERVING

    @observed(SERVICE, health_pb2.HealthCheckRequest)
    async def Check(self, request: Any, context: Any) -> Any:
        status = self.status(request.service)
        if status == _UNKNOWN:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: Any, context: Any) -> AsyncIterator[Any]:
        """The status now, then each change (the cache is looked at every interval)."""
        if type(request) is bytes:
            try:
                request = decoded(health_pb2.HealthCheckRequest, request)
            except BadRequest as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.detail)
        last = None
        while True:
            status = self.status(request.service)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            await asyncio.sleep(self.watch_interval)
