"""Reference apps the service is measured against, in the same run and the same way.

- ``empty``: FastAPI, parses the /predict body (and a V2 infer body, JSON tensors)
  with pydantic, answers a constant: the cost of the framework alone.
- ``numpy``: FastAPI + pydantic + a two-layer NumPy forward pass (the idle-RSS
  reference: a FastAPI + NumPy app).
- ``numpy_grpc``: the ``numpy`` app with a ``grpc.aio`` server (the standard health
  service) in its process, on ``BENCH_GRPC_PORT``: what in-process gRPC costs any
  FastAPI app, beside the idle-RSS target, which predates the service's gRPC server.
- ``sklearn``: the naive service: FastAPI + pydantic + scikit-learn's
  ``MLPClassifier(hidden_layer_sizes=(3,), activation="logistic")`` fitted on Iris
  at start.

Run with ``uvicorn bench.baselines:empty`` (or ``:numpy``, ``:numpy_grpc``, ``:sklearn``);
each answers ``GET /ready`` once it can serve.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    instances: list[list[float]]


class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferBody(BaseModel):
    inputs: list[Tensor]


empty = FastAPI()


@empty.get("/ready")
async def empty_ready() -> dict[str, str]:
    return {"status": "ready"}


@empty.post("/predict")
async def predict_constant(body: Body) -> dict[str, object]:
    return {"model_version": "constant", "predictions": [{"label": "setosa"}]}


@empty.post("/v2/models/iris-net/infer")
async def infer_constant(body: InferBody) -> dict[str, object]:
    return {"model_name": "iris-net", "outputs": []}


numpy = FastAPI()
_W = np.array([[1.0, -1.0, 3.0], [2.0, 2.0, -1.0]])
_V = np.array([[0.1], [0.5], [-0.1]])


@numpy.get("/ready")
async def numpy_ready() -> dict[str, str]:
    return {"status": "ready"}


@numpy.post("/predict")
async def predict_forward(body: Body) -> dict[str, object]:
    X = np.asarray(body.instances, dtype=np.float64)
    h = 1.0 / (1.0 + np.exp(-(X @ _W)))
    p = (1.0 / (1.0 + np.exp(-(h @ _V))))[:, 0]
    return {
        "model_version": "numpy",
        "predictions": [
            {
                "label": "setosa" if q >= 0.5 else "not-setosa",
                "probabilities": {"not-setosa": 1 - q, "setosa": q},
            }
            for q in p.tolist()
        ],
    }


def _sklearn_app() -> FastAPI:
    import warnings

    from sklearn.datasets import load_iris
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    iris = load_iris()
    X = iris.data[:, :2]
    y = np.where(iris.target == 0, "setosa", "not-setosa")
    clf = MLPClassifier(hidden_layer_sizes=(3,), activation="logistic", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    classes = [str(c) for c in clf.classes_]
    app = FastAPI()

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/predict")
    async def predict(body: Body) -> dict[str, Any]:
        proba = clf.predict_proba(np.array(body.instances))
        return {
            "model_version": "sklearn",
            "predictions": [
                {
                    "label": classes[int(np.argmax(row))],
                    "probabilities": dict(zip(classes, row.tolist(), strict=True)),
                }
                for row in proba
            ],
        }

    return app


def _numpy_grpc_app() -> FastAPI:
    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        server.add_insecure_port(f"127.0.0.1:{os.environ['BENCH_GRPC_PORT']}")
        await server.start()
        try:
            yield
        finally:
            await server.stop(0)

    app = FastAPI(lifespan=lifespan)
    app.include_router(numpy.router)
    return app


_BUILT_ON_ACCESS = {"sklearn": _sklearn_app, "numpy_grpc": _numpy_grpc_app}


def __getattr__(name: str) -> Any:
    """``sklearn`` and ``numpy_grpc`` are built on first access: the other apps need not
    import scikit-learn or grpcio."""
    if name in _BUILT_ON_ACCESS:
        app = _BUILT_ON_ACCESS[name]()
        globals()[name] = app
        return app
    raise AttributeError(name)
