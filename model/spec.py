"""Validate a network given as plain lists (POST /backprop's `weights.layers`).

Every rule names the layer index it checks, because the message is shown to the
person who typed the weights.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from model.activations import ACTIVATIONS, HIDDEN_ACTIVATIONS
from model.layers import Dense
from model.network import layer_names
from model.types import FloatArray

MAX_LAYERS = 16
# The trace's gradient check runs two forward passes per parameter, so its cost grows
# with the square of the parameter count; 10,000 keeps one trace well under a second.
MAX_PARAMETERS = 10_000
SPEC_KEYS = {"weights", "bias", "activation"}


def _number(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _matrix(index: int, weights: object) -> FloatArray:
    if isinstance(weights, np.ndarray):
        if weights.ndim != 2 or weights.dtype.kind not in "fiu":
            raise ValueError(f"layer {index}: weights must be a 2-D array of numbers")
        W = weights.astype(np.float64)
    else:
        if not isinstance(weights, list | tuple) or not weights:
            raise ValueError(f"layer {index}: weights must be a non-empty list of rows")
        rows = []
        for r, row in enumerate(weights):
            if not isinstance(row, list | tuple | np.ndarray) or len(row) == 0:
                raise ValueError(f"layer {index}: weights row {r} must be a non-empty list")
            if not all(_number(v) for v in row):
                raise ValueError(f"layer {index}: weights row {r} must hold only numbers")
            rows.append([float(v) for v in row])
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise ValueError(f"layer {index}: weights rows have different lengths {sorted(widths)}")
        W = np.array(rows, dtype=np.float64)
    if W.size == 0:
        raise ValueError(f"layer {index}: weights must not be empty")
    if not np.all(np.isfinite(W)):
        raise ValueError(f"layer {index}: weights must be finite numbers (no NaN or infinity)")
    return W


def _bias(index: int, bias: object, n_out: int) -> FloatArray | None:
    if bias is None:
        return None
    if isinstance(bias, np.ndarray):
        values = bias.tolist() if bias.ndim == 1 else [None]
    elif isinstance(bias, list | tuple):
        values = list(bias)
    else:
        raise ValueError(f"layer {index}: bias must be a list of numbers or null")
    if not all(_number(v) for v in values):
        raise ValueError(f"layer {index}: bias must hold only numbers")
    if len(values) != n_out:
        raise ValueError(
            f"layer {index}: bias has {len(values)} values but the weights have {n_out} columns"
        )
    b = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(b)):
        raise ValueError(f"layer {index}: bias must be finite numbers (no NaN or infinity)")
    return b


def _activation(index: int, activation: object, last: bool, n_out: int) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(
            f"layer {index}: unknown activation {activation!r}; "
            f"expected one of {', '.join(ACTIVATIONS)}"
        )
    if not last and activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"layer {index}: {activation} is only allowed in the last layer; hidden layers "
            f"use one of {', '.join(HIDDEN_ACTIVATIONS)}"
        )
    if last:
        if activation == "sigmoid" and n_out != 1:
            raise ValueError(
                f"layer {index}: a sigmoid output layer must have 1 unit "
                f"(binary cross-entropy), got {n_out}; use softmax for several classes"
            )
        if activation == "softmax" and n_out < 2:
            raise ValueError(f"layer {index}: a softmax output layer needs >= 2 units, got 1")
        if activation not in ("sigmoid", "softmax"):
            raise ValueError(
                f"layer {index}: the last layer's activation must be sigmoid "
                f"(binary cross-entropy) or softmax (categorical cross-entropy), "
                f"got {activation!r}"
            )
    return activation


def _layer(index: int, spec: object, n_in: int | None, last: bool, name: str) -> Dense:
    if not isinstance(spec, dict):
        raise ValueError(f"layer {index}: must be an object with weights, bias, activation")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise ValueError(
            f"layer {index}: unknown keys {sorted(unknown)}; expected {sorted(SPEC_KEYS)}"
        )
    for key in ("weights", "activation"):
        if key not in spec:
            raise ValueError(f"layer {index}: missing {key!r}")
    W = _matrix(index, spec["weights"])
    if n_in is not None and W.shape[0] != n_in:
        raise ValueError(
            f"layer {index}: weights have {W.shape[0]} rows but layer {index - 1} "
            f"has {n_in} outputs (W is [in, out])"
        )
    b = _bias(index, spec.get("bias"), W.shape[1])
    activation = _activation(index, spec["activation"], last, W.shape[1])
    return Dense(name, W, b, activation)


def parse_spec(layers: list[dict[str, Any]]) -> list[Dense]:
    """Dense layers from `[{"weights": [[...]], "bias": [...] | None, "activation": ...}]`.

    Raises ValueError naming the layer index and the rule it breaks.
    """
    if not isinstance(layers, list | tuple) or not layers:
        raise ValueError("weights.layers must be a non-empty list of layers")
    if len(layers) > MAX_LAYERS:
        raise ValueError(f"at most {MAX_LAYERS} layers are allowed, got {len(layers)}")
    names = layer_names(len(layers))
    result: list[Dense] = []
    n_parameters = 0
    for index, spec in enumerate(layers):
        n_in = result[-1].n_out if result else None
        layer = _layer(index, spec, n_in, index == len(layers) - 1, names[index])
        n_parameters += layer.n_parameters
        if n_parameters > MAX_PARAMETERS:
            raise ValueError(
                f"layer {index}: the network exceeds {MAX_PARAMETERS} parameters "
                "(the gradient check's cost grows with their square)"
            )
        result.append(layer)
    return result
