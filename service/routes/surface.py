"""``GET /model/decision-surface``: the model's predictions over a grid of two features,
the lecture's ``pcolormesh`` plot as data, with the Iris flowers to draw on top.

Other features are held at their training means. The whole grid goes through the same
``predict_proba`` that ``POST /predict`` uses, in one vectorised forward pass, so every
cell equals what ``/predict`` answers for that row.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from model.iris import IRIS_FEATURES, iris

from ..cache import LoadedModel
from ..deps import CacheDep
from ..errors import InvalidInput
from ..schemas import DecisionSurface, error_responses

router = APIRouter(tags=["models"])

MAX_RESOLUTION = 200
IRIS_MARGIN = 0.5  # cm, as the lecture's plot: min - 0.5 .. max + 0.5
STD_SPAN = 3.0  # a feature Iris does not have spans mean +- 3 std of its training data


def _statistics(model: LoadedModel, feature: str) -> tuple[float, float] | None:
    """The training mean and std of a feature, when the model keeps them."""
    clf = model.classifier
    if clf.mean is None or clf.std is None:
        return None
    j = model.features.index(feature)
    return float(clf.mean[j]), float(clf.std[j])


def _no_statistics(feature: str) -> str:
    return (
        f"the model keeps no training statistics for {feature!r}, which is not an Iris "
        "feature (it was trained with standardize=false), so there is no mean to hold it at "
        "and no range to span"
    )


def held_value(model: LoadedModel, feature: str) -> float:
    """Where a feature off the plot is held: its training mean (or the Iris mean)."""
    stats = _statistics(model, feature)
    if stats is not None:
        return stats[0]
    if feature in IRIS_FEATURES:
        return float(iris().column(feature).mean())
    raise InvalidInput(["query"], _no_statistics(feature))


def axis_range(model: LoadedModel, feature: str, param: str) -> tuple[float, float]:
    """The Iris range with a 0.5 cm margin, or mean +- 3 std for another feature."""
    if feature in IRIS_FEATURES:
        values = iris().column(feature)
        return float(values.min()) - IRIS_MARGIN, float(values.max()) + IRIS_MARGIN
    stats = _statistics(model, feature)
    if stats is None:
        raise InvalidInput(["query", param], _no_statistics(feature))
    mean, std = stats
    return mean - STD_SPAN * std, mean + STD_SPAN * std


def _points(model: LoadedModel, x_name: str, y_name: str) -> list[dict[str, Any]]:
    """The 150 flowers in the two features, each with its species and the model's class."""
    if x_name not in IRIS_FEATURES or y_name not in IRIS_FEATURES:
        return []
    table = iris()
    classes = model.classes
    target = model.classifier.target

    def model_class(species: str) -> str | None:
        if target == "species":
            return species
        if target in table.species:  # binary: the named species against the rest
            return species if species == target else f"not-{target}"
        return species if species in classes else None

    xs, ys = table.column(x_name).tolist(), table.column(y_name).tolist()
    return [
        {"x": x, "y": y, "species": s, "class": model_class(s)}
        for x, y, s in zip(xs, ys, table.species, strict=True)
    ]


def _axes(model: LoadedModel, x: str | None, y: str | None) -> tuple[str, str]:
    features = model.features
    if len(features) < 2:
        raise InvalidInput(
            ["query"],
            f"the model has one feature ({features[0]}); a decision surface needs two "
            "(train a model on at least two features)",
        )
    x_name, y_name = x or features[0], y or features[1]
    for param, name in (("x", x_name), ("y", y_name)):
        if name not in features:
            raise InvalidInput(
                ["query", param],
                f"{param}={name!r} is not a feature of the model; it has {list(features)}",
            )
    if x_name == y_name:
        raise InvalidInput(
            ["query", "y"], f"x and y must be two different features, both are {x_name!r}"
        )
    return x_name, y_name


def decision_surface(
    model: LoadedModel, x: str | None, y: str | None, resolution: int
) -> dict[str, Any]:
    """The grid, its probabilities and labels, the held values and the Iris points.

    Shapes: probabilities (resolution_y, resolution_x, n_classes), row j is y[j].
    """
    x_name, y_name = _axes(model, x, y)
    features = model.features
    held = {name: held_value(model, name) for name in features if name not in (x_name, y_name)}
    gx = np.linspace(*axis_range(model, x_name, "x"), resolution)
    gy = np.linspace(*axis_range(model, y_name, "y"), resolution)
    X = np.empty((resolution * resolution, len(features)))
    for name, value in held.items():
        X[:, features.index(name)] = value
    X[:, features.index(x_name)] = np.tile(gx, resolution)  # x varies fastest
    X[:, features.index(y_name)] = np.repeat(gy, resolution)
    with np.errstate(over="ignore", invalid="ignore"):
        proba = model.classifier.predict_proba(X)
    if not np.isfinite(proba).all():
        raise InvalidInput(["query"], "the model overflows float64 on this grid")
    grid = proba.reshape(resolution, resolution, len(model.classes))
    return {
        "model_version": model.version,
        "features": [x_name, y_name],
        "classes": list(model.classes),
        "x": gx.tolist(),
        "y": gy.tolist(),
        "held": held,
        "probabilities": grid.tolist(),
        "labels": grid.argmax(axis=2).tolist(),
        "points": _points(model, x_name, y_name),
    }


@router.get(
    "/model/decision-surface",
    response_model=None,
    responses={
        200: {"model": DecisionSurface, "description": "The grid and the Iris points"},
        **error_responses(404, 422, 503),
    },
)
async def get_decision_surface(
    cache: CacheDep,
    x: str | None = Query(None, description="Feature on the x axis (default: the first)"),
    y: str | None = Query(None, description="Feature on the y axis (default: the second)"),
    resolution: int = Query(
        50, ge=2, le=MAX_RESOLUTION, description="Grid points per axis (2 to 200)"
    ),
    version: str | None = Query(None, description="A stored version (default: the active)"),
) -> Response:
    """Class probabilities over a grid of two features, the others held at their means."""
    model = await cache.get(version or None)

    def build() -> bytes:
        return orjson.dumps(decision_surface(model, x or None, y or None, resolution))

    return Response(await asyncio.to_thread(build), media_type="application/json")
