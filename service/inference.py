"""The predict path: JSON bytes in, one forward pass, JSON bytes out.

The body is parsed once with orjson, validated on plain Python values as it is
turned into one float64 array, and the answer is encoded straight to bytes.
orjson refuses NaN and Infinity, which Python's own JSON module would accept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from .cache import LoadedModel
from .errors import InvalidInput

_NUMBER = (float, int)  # bool is a subclass of int but `type(True) is bool`: refused below


def load_json(body: bytes) -> Any:
    """Parse a request body, or a 422 saying why it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(["body"], f"the body is not valid JSON: {exc}", "json_invalid") from None


def parse_instances(body: bytes, model: LoadedModel, max_rows: int) -> np.ndarray:
    """The rows of a predict request as an array in the model's feature order.

    Shapes: returns X (n_samples, n_features).
    """
    payload = load_json(body)
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput(
            ["body", "instances"],
            'the body must be a JSON object with "instances": a list of rows',
            "missing",
        )
    instances = payload["instances"]
    if type(instances) is not list or not 1 <= len(instances) <= max_rows:
        got = f"{len(instances)} rows" if isinstance(instances, list) else type(instances).__name__
        raise InvalidInput(
            ["body", "instances"], f"instances must be a list of 1 to {max_rows} rows, got {got}"
        )
    features = model.features
    rows = [_row(row, i, model) for i, row in enumerate(instances)]
    X = np.array(rows, dtype=np.float64)
    if not np.isfinite(X).all():
        bad = int(np.argwhere(~np.isfinite(X))[0][0])
        raise InvalidInput(["body", "instances", bad], "every value must be a finite number")
    assert X.shape == (len(rows), len(features))
    return X


def _row(row: Any, i: int, model: LoadedModel) -> list[Any]:
    """One instance as a list of values in feature order, or a 422 naming the features."""
    features = model.features
    if type(row) is dict:
        if row.keys() != model.feature_set:
            raise InvalidInput(["body", "instances", i], _wrong_names(row, model))
        values = [row[name] for name in features]
    elif type(row) is list:
        if len(row) != len(features):
            raise InvalidInput(
                ["body", "instances", i],
                f"row {i} has {len(row)} values; the model expects {len(features)}, "
                f"the features {list(features)} in this order",
            )
        values = row
    else:
        raise InvalidInput(
            ["body", "instances", i],
            f"row {i} must be a list of {len(features)} numbers or an object with the "
            f"features {list(features)}",
        )
    for value in values:
        if type(value) not in _NUMBER:
            raise InvalidInput(
                ["body", "instances", i],
                f"row {i} holds {value!r}; every value must be a finite number",
            )
    return values


def _wrong_names(row: dict[str, Any], model: LoadedModel) -> str:
    missing = [name for name in model.features if name not in row]
    extra = sorted(set(row) - model.feature_set)
    parts = [f"missing {missing}" if missing else "", f"unknown {extra}" if extra else ""]
    said = " and ".join(p for p in parts if p)
    return f"the model expects exactly the features {list(model.features)}; this row has {said}"


def probabilities(model: LoadedModel, X: np.ndarray) -> np.ndarray:
    """Class probabilities, or a 422 when finite but huge inputs overflow the network.

    Shapes: X (n_samples, n_features) -> (n_samples, n_classes).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        proba = model.classifier.predict_proba(X)
    if not np.isfinite(proba).all():
        bad = int(np.argwhere(~np.isfinite(proba).all(axis=1))[0][0])
        raise InvalidInput(
            ["body", "instances", bad],
            f"row {bad} is too large for a finite prediction (the network overflows float64)",
        )
    return proba


def predictions(model: LoadedModel, X: np.ndarray) -> list[dict[str, Any]]:
    """Label and per-class probabilities for each row.

    Shapes: X (n_samples, n_features).
    """
    proba = probabilities(model, X)
    classes = model.classes
    best = proba.argmax(axis=1).tolist()
    return [
        {"label": classes[k], "probabilities": dict(zip(classes, row, strict=True))}
        for k, row in zip(best, proba.tolist(), strict=True)
    ]


def predict_bytes(body: bytes, model: LoadedModel, max_rows: int) -> bytes:
    """The whole predict answer, encoded."""
    X = parse_instances(body, model, max_rows)
    return orjson.dumps({"model_version": model.version, "predictions": predictions(model, X)})
