"""The ``grpc.aio`` server of each worker, started and stopped by the app's lifespan.

It runs on the worker's event loop beside uvicorn, over the worker's own state.
With several workers every worker listens on ``BACKPROP_GRPC_PORT`` with
``SO_REUSEPORT`` (grpcio's default on Linux) and the kernel spreads new
connections across them, as uvicorn's shared socket spreads HTTP ones: each
worker serves gRPC beside its HTTP, with no process of its own to proxy,
restart or keep in step. ``ports.check_port_free`` (called by the command line,
before the workers start) refuses a port that something else already holds,
since port reuse would otherwise join that socket's group silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import grpc

from .calls import unary_handlers
from .health import SERVICE as HEALTH_SERVICE
from .health import HealthServicer, handlers
from .ports import address
from .servicer import METHODS, SERVICE, InferenceServicer
from .unimplemented import Unimplemented

log = logging.getLogger("backprop.rpc")

STOP_GRACE_SECONDS = 5.0  # in-flight calls finish; uvicorn's own grace is 8 s


@dataclass
class GrpcServer:
    server: Any
    health: HealthServicer
    address: str

    async def stop(self) -> None:
        """Refuse new calls, let the ones in flight finish (up to the grace), close."""
        self.health.stopping = True
        await self.server.stop(STOP_GRACE_SECONDS)
        log.info("gRPC server on %s stopped", self.address)


async def start_grpc(app: Any) -> GrpcServer:
    """Serve gRPC on ``BACKPROP_GRPC_PORT`` (not 0) until ``stop``."""
    settings = app.state.settings
    limit = settings.grpc_max_message_bytes
    server = grpc.aio.server(
        options=(
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
        )
    )
    health = HealthServicer(app.state, settings.reload_interval)
    inference = InferenceServicer(app.state, app.version)
    offered = f"{SERVICE} ({', '.join(METHODS)}) and {HEALTH_SERVICE} (Check, Watch)"
    server.add_generic_rpc_handlers(
        (unary_handlers(SERVICE, inference, METHODS), handlers(health), Unimplemented(offered))
    )
    where = address(settings.host, settings.grpc_port)
    try:
        server.add_insecure_port(where)
    except RuntimeError as exc:
        raise RuntimeError(f"the gRPC server cannot listen on {where}: {exc}") from None
    await server.start()
    log.info("gRPC (Open Inference Protocol) listening on %s", where)
    return GrpcServer(server, health, where)
