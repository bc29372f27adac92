"""The app factory and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property, partial
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from .cache import ModelCache
from .cors import with_cors
from .errors import install_error_handler
from .fastpath import serve_fast
from .follow import follow_pointer
from .jobs import JobRunner
from .logs import access, configure_logging
from .middleware import RequestContext
from .openapi import state_contract_in_openapi
from .registry import PointerWatcher
from .settings import Settings
from .store import new_id, now_iso
from .storefaults import install_registry_error_handler, open_store
from .v2.infer import infer_target

log = logging.getLogger("backprop.app")
ROUTES_AFTER_SECONDS = 0.5

DESCRIPTION = (
    "The lecture's two-layer network in NumPy, served: predictions, background training "
    "jobs, full backpropagation traces, model versions, the V2 inference protocol and "
    "Prometheus metrics. Calls marked (token) need `Authorization: Bearer <token>`."
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store, start following the active version and running jobs."""
    settings: Settings = app.state.settings
    store = await asyncio.to_thread(open_store, settings)
    await asyncio.to_thread(store.sync)
    cache = ModelCache(store)
    runner = JobRunner(store, settings, trains=settings.role != "serve")
    app.state.store, app.state.cache, app.state.runner = store, cache, runner
    await asyncio.to_thread(runner.fail_unleased)
    if settings.train_on_empty:
        from .routes import train
        from .schemas import TrainRequest

        config = train.job_config(TrainRequest(), settings.max_train_epochs)
        job_id = new_id("job-")
        if await asyncio.to_thread(store.registry.enqueue_if_empty, job_id, config, now_iso()):
            log.info(
                "the model store %s is empty: training the default model (%s)", store.root, job_id
            )
    await cache.refresh()
    watcher = PointerWatcher(store.registry, settings.reload_interval, settings.registry_listen)
    app.state.watcher = watcher
    if isinstance(app, ServiceApp):  # the routes when nothing else runs, soon after start
        asyncio.get_running_loop().call_later(ROUTES_AFTER_SECONDS, app.settle)
    tasks = [
        asyncio.create_task(follow_pointer(cache, watcher)),
        asyncio.create_task(runner.run_forever()),
    ]
    grpc_server = None
    if settings.grpc_port:  # imported only when served: see service/rpc/__init__.py
        from .rpc.server import start_grpc

        grpc_server = await start_grpc(app)
    try:
        yield
    finally:
        if grpc_server is not None:
            await grpc_server.stop()
        await runner.shutdown()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        cache.close()
        await asyncio.to_thread(watcher.stop)
        store.close()
        access.flush()  # the last requests' access lines, before the process exits


def _token(settings: Settings) -> bytes:
    if settings.api_token is not None:
        return settings.api_token.get_secret_value().encode()
    token = secrets.token_urlsafe(32)
    log.warning("BACKPROP_API_TOKEN is not set; the token for this run is %s", token)
    return token.encode()


class AppState(State):
    """Starlette's app state, each value also kept as a plain attribute.

    Starlette's ``State`` finds ``state.x`` only after the normal lookup has failed (an
    AttributeError raised and caught inside), about 0.5-1 us; the fast path reads the
    state three times a request.
    """

    def __setattr__(self, key: str, value: Any) -> None:
        super().__setattr__(key, value)
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        super().__delattr__(key)
        object.__delattr__(self, key)


class ServiceApp(FastAPI):
    """FastAPI, entered through the service's own ASGI edge.

    ``POST /predict`` and V2 infer are answered by ``serve_fast`` (request id, body
    limit, answer, metrics, access line in one pass) before FastAPI's entry point,
    routing and middleware, which would cost more than the forward pass itself.
    Every other HTTP request passes ``RequestContext`` (the same request id, access
    log, metrics and body limit) and goes on to FastAPI. ``fast_path = False`` sends
    those two calls through ``RequestContext`` to their FastAPI routes too.
    """

    fast_path = True
    _routes_included = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = AppState()

    @property
    def routes(self) -> list[BaseRoute]:
        self.include_routes()
        return super().routes

    def settle(self) -> None:
        """Once start-up is over: add the routes, then move every object alive now (the
        framework, the routes, the loaded model: about 100,000) out of the garbage
        collector's sight. A full collection of them takes some 40 ms, which a request
        arriving then would wait for; they live as long as the process anyway."""
        self.include_routes()
        gc.collect()
        gc.freeze()

    def include_routes(self) -> None:
        """Add the API's routers, once. Deferred from start-up (building them and their
        pydantic models is most of the import time, and predict/infer need none of it):
        done by the first request that needs them, the schema, or a timer soon after
        the lifespan starts, whichever comes first."""
        if self._routes_included:
            return
        self._routes_included = True
        from .routes import (
            backprop,
            dashboard,
            health,
            metrics,
            models,
            predict,
            surface,
            train,
            v2,
        )
        from .routes.docs import install_docs

        for router in (
            health.router,
            models.router,
            surface.router,
            predict.router,
            train.router,
            backprop.router,
            metrics.router,
            v2.router,
            dashboard.router,
        ):
            self.include_router(router)
        install_docs(self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        if scope["method"] == "POST" and self._fast:
            path = scope["path"]
            if path == "/predict":
                await serve_fast(self.state, scope, receive, send, None)
                return
            target = infer_target(path)
            if target is not None:
                await serve_fast(self.state, scope, receive, send, target)
                return
        if not self._routes_included:
            self.include_routes()
        await self._edge(scope, receive, send)

    @cached_property
    def _fast(self) -> bool:
        """Predict and infer skip the edge, unless CORS (which the fast path lacks) is on."""
        return self.fast_path and not self.state.settings.cors_origins

    @cached_property
    def _edge(self) -> RequestContext:
        settings: Settings = self.state.settings
        entry = partial(FastAPI.__call__, self)
        inner = with_cors(entry, settings.cors_origins)  # a no-op unless origins are set
        return RequestContext(inner, settings.max_body_bytes, settings.max_train_body_bytes)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; nothing is loaded until the lifespan starts."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    app = ServiceApp(
        title="backprop-serve",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.token = _token(settings)
    install_error_handler(app)
    install_registry_error_handler(app)
    state_contract_in_openapi(app, settings.max_train_epochs)
    return app
