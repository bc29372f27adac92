"""Reference apps the service is measured against, in the same run and the same way.

- ``empty``: FastAPI, parses the /predict body with pydantic, answers a constant.
- ``numpy``: FastAPI + pydantic + the same two-layer NumPy forward pass.
Run with ``uvicorn bench.baselines:empty`` (or ``:numpy``).
"""

from __future__ import annotations

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel


class Body(BaseModel):
    instances: list[list[float]]


empty = FastAPI()


@empty.post("/predict")
async def predict_constant(body: Body) -> dict[str, object]:
    return {"model_version": "constant", "predictions": [{"label": "setosa"}]}


numpy = FastAPI()
_W = np.array([[1.0, -1.0, 3.0], [2.0, 2.0, -1.0]])
_V = np.array([[0.1], [0.5], [-0.1]])


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
