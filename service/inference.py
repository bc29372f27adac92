"""The predict path: JSON bytes in, one forward pass, JSON bytes out.

The body is parsed once with orjson and turned into one float64 array in C-speed
steps when it is plainly well formed (rows of numbers, nothing else); otherwise the
row-by-row checks run, to word the exact error. The answer is assembled from
pre-encoded pieces and one orjson pass over the probability array: no Python dict
per row. orjson refuses NaN and Infinity, which Python's own JSON module writes.
"""

from __future__ import annotations

import functools
import math
from itertools import chain
from typing import Any

import numpy as np
import orjson

from .cache import LoadedModel
from .errors import InvalidInput

_NUMBER = (float, int)  # bool is a subclass of int but `type(True) is bool`: refused below


NON_FINITE_MESSAGE = (
    "NaN and Infinity are not JSON numbers (Python's json.dumps writes them, JSON has no "
    "such values); every value must be a finite number"
)


TOO_LARGE_MESSAGE = (
    "a number is beyond a double's range (it would be infinity); every value must be a "
    "finite number"
)


def non_finite_message(body: bytes, exc: orjson.JSONDecodeError) -> str | None:
    """Why the body is refused when orjson stopped at NaN, Infinity or -Infinity (what
    Python's json.dumps writes for non-finite floats) or at a number beyond a double's
    range (1e400); None when the JSON is broken in some other way."""
    if "infinity when parsed" in exc.msg:
        return TOO_LARGE_MESSAGE
    if body.startswith((b"NaN", b"Infinity"), exc.pos):
        return NON_FINITE_MESSAGE
    return None


def load_json(body: bytes) -> Any:
    """Parse a request body, or a 422 saying why it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        message = non_finite_message(body, exc)
        if message is not None:
            raise InvalidInput(["body"], message, "finite_number") from None
        raise InvalidInput(["body"], f"the body is not valid JSON: {exc}", "json_invalid") from None


def predict_answer_bytes(body: bytes, model: LoadedModel, max_rows: int) -> tuple[bytes, int]:
    """The encoded answer to a predict body, and how many rows it answers.

    One row of plain numbers on a small network takes the Python-float forward pass
    (``model.row``) and a one-row encoding: no NumPy call at all.
    """
    instances = _instances(load_json(body), max_rows)
    row = model.row
    if row is not None and len(instances) == 1:
        values = instances[0]
        if type(values) is list and len(values) == row.width and _numbers(values):
            proba = row(values)
            if proba is not None:
                return encode_row_answer(model.version, model.classes, proba), 1
    X = rows_array(body, instances, model)
    return encode_answer(model.version, model.classes, probabilities(model, X)), len(X)


def parse_instances(body: bytes, model: LoadedModel, max_rows: int) -> np.ndarray:
    """The rows of a predict request as an array in the model's feature order.

    Shapes: returns X (n_samples, n_features).
    """
    return rows_array(body, _instances(load_json(body), max_rows), model)


def _numbers(values: list[Any]) -> bool:
    """Whether every value is a JSON number (bool, a subclass of int, is not)."""
    for value in values:
        if type(value) is not float and type(value) is not int:
            return False
    return True


def _instances(payload: Any, max_rows: int) -> list[Any]:
    """The body's ``instances`` list, or a 422 saying what is wrong with it."""
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
    return instances


def rows_array(body: bytes, instances: list[Any], model: LoadedModel) -> np.ndarray:
    """``instances`` (the parsed rows of ``body``) as X in the model's feature order, or a
    422 naming the first bad row. Shapes: returns X (n_samples, n_features)."""
    X = _plain_rows(body, instances, len(model.features))
    if X is not None:
        return X
    features = model.features
    rows = [_row(row, i, model) for i, row in enumerate(instances)]
    X = np.array(rows, dtype=np.float64)
    if not np.isfinite(X).all():
        bad = int(np.argwhere(~np.isfinite(X))[0][0])
        raise InvalidInput(["body", "instances", bad], "every value must be a finite number")
    assert X.shape == (len(rows), len(features))
    return X


def _plain_rows(body: bytes, instances: list[Any], width: int) -> np.ndarray | None:
    """The rows as X when the body is plainly valid, else None (the checks word why).

    Plainly valid: the only string in the body is the key "instances" (so no value is
    a string, and no row an object), no true/false/null (``np.fromiter`` would take
    them as 1, 0 and NaN), every row a list of ``width`` values. Then every value is a
    JSON number or a nested list (which stops ``np.fromiter``); orjson has already
    refused NaN, Infinity and numbers beyond a double's range, so X is finite.
    """
    if body.count(b'"') != 2 or b"true" in body or b"false" in body or b"null" in body:
        return None
    if set(map(type, instances)) != {list} or set(map(len, instances)) != {width}:
        return None
    try:
        flat = np.fromiter(chain.from_iterable(instances), np.float64, len(instances) * width)
    except (TypeError, ValueError):
        return None
    return flat.reshape(len(instances), width)


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

    One row on a small network takes the Python-float forward pass (``model.row``).
    Shapes: X (n_samples, n_features) -> (n_samples, n_classes).
    """
    if model.row is not None and X.shape[0] == 1:
        row = model.row(X[0].tolist())
        if row is not None:
            return np.array([row])
    proba = model.batch(X)  # Classifier.predict_proba's values, in fewer NumPy calls
    if not math.isfinite(np.add.reduce(proba, axis=None)):  # they cannot sum past a double's range
        bad = int(np.argwhere(~np.isfinite(proba).all(axis=1))[0][0])
        raise InvalidInput(
            ["body", "instances", bad],
            f"row {bad} is too large for a finite prediction (the network overflows float64)",
        )
    return proba


def predictions(model: LoadedModel, X: np.ndarray) -> list[dict[str, Any]]:
    """Label and per-class probabilities for each row, as Python objects.

    Shapes: X (n_samples, n_features).
    """
    proba = probabilities(model, X)
    classes = model.classes
    best = proba.argmax(axis=1).tolist()
    return [
        {"label": classes[k], "probabilities": dict(zip(classes, row, strict=True))}
        for k, row in zip(best, proba.tolist(), strict=True)
    ]


def best_classes(proba: np.ndarray) -> np.ndarray:
    """Each row's most probable column, the first of equal maxima (``argmax(axis=1)``).

    Two columns, as the lecture's binary model has: one comparison of whole columns,
    a few times faster than NumPy's per-row argmax over a short axis. Shapes: proba
    (n, k) -> (n,).
    """
    if proba.ndim == 2 and proba.shape[1] == 2:
        return np.greater(proba[:, 1], proba[:, 0]).view(np.uint8)
    return proba.argmax(axis=1)


def encode_answer(version: str, classes: tuple[str, ...], proba: np.ndarray) -> bytes:
    """The predict answer's JSON, byte for byte what ``orjson.dumps`` writes for
    ``{"model_version": version, "predictions": [{"label": ..., "probabilities":
    {class: p, ...}}, ...]}``, built from one orjson pass over the array and
    pre-encoded pieces rather than a dict per row.

    Shapes: proba (n_samples, n_classes), columns in ``classes`` order.
    """
    n, k = proba.shape
    prefix, separators, end = _pieces(classes)
    values = orjson.dumps(proba.ravel(), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    stride = 2 * k + 1  # per row: label and first key, k values, k - 1 keys, the end
    parts: list[bytes] = [end] * (n * stride)
    parts[0::stride] = list(map(prefix.__getitem__, best_classes(proba).tolist()))
    for j in range(k):
        parts[1 + 2 * j :: stride] = values[j::k]
    for j in range(1, k):
        parts[2 * j :: stride] = [separators[j]] * n
    rows = b"".join(parts)[:-1]  # the last row's trailing comma
    return b'{"model_version":' + orjson.dumps(version) + b',"predictions":[' + rows + b"]}"


@functools.lru_cache(maxsize=64)
def _pieces(classes: tuple[str, ...]) -> tuple[tuple[bytes, ...], tuple[bytes, ...], bytes]:
    """Per label, the row's text up to its first probability; per class, its key; the end."""
    keys = [orjson.dumps(name) for name in classes]
    prefix = tuple(b'{"label":' + key + b',"probabilities":{' + keys[0] + b":" for key in keys)
    separators = tuple(b"," + key + b":" for key in keys)
    return prefix, separators, b"}},"


def encode_row_answer(version: str, classes: tuple[str, ...], proba: list[float]) -> bytes:
    """``encode_answer`` of one row given as a list of floats: the same bytes."""
    prefix, separators, _ = _pieces(classes)
    values = orjson.dumps(proba)[1:-1].split(b",")
    best = proba.index(max(proba))  # the first of equal maxima, as argmax
    parts = [b'{"model_version":', orjson.dumps(version), b',"predictions":[', prefix[best]]
    parts.append(values[0])
    for separator, value in zip(separators[1:], values[1:], strict=True):
        parts.append(separator)
        parts.append(value)
    parts.append(b"}}]}")
    return b"".join(parts)
