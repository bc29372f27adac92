"""One sample forward and backward, every intermediate value kept: the lecture's
"Backpropagation by Hand" as data (API.md's GET /backprop answer).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from model.classifier import Classifier
from model.gradcheck import DEFAULT_EPSILON, GradientCheck, compare, numerical_gradients
from model.layers import Dense
from model.network import Network
from model.samples import default_classes, label_index, parse_sample, target_row
from model.types import FloatArray

# A unit whose activation derivative is below this passes almost no gradient back.
SATURATION_THRESHOLD = 1e-3
MAX_EPSILON = 1e-2


@dataclass(frozen=True)
class LayerTrace:
    """One layer's forward and backward values for the sample. Shapes: W (in, out)."""

    name: str
    activation: str
    weights: FloatArray
    bias: FloatArray | None
    pre_activation: FloatArray
    output: FloatArray
    activation_derivative: FloatArray | None
    grad_output: FloatArray
    grad_pre_activation: FloatArray
    grad_weights: FloatArray
    grad_bias: FloatArray | None
    saturated: tuple[int, ...]
    weights_after_step: FloatArray | None = None
    bias_after_step: FloatArray | None = None

    def to_dict(self, with_step: bool) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": self.name,
            "activation": self.activation,
            "weights": self.weights.tolist(),
            "bias": _list(self.bias),
            "pre_activation": self.pre_activation.tolist(),
            "output": self.output.tolist(),
            "activation_derivative": _list(self.activation_derivative),
            "grad_output": self.grad_output.tolist(),
            "grad_pre_activation": self.grad_pre_activation.tolist(),
            "grad_weights": self.grad_weights.tolist(),
            "grad_bias": _list(self.grad_bias),
            "saturated": list(self.saturated),
        }
        if with_step:
            values["weights_after_step"] = _list(self.weights_after_step)
            values["bias_after_step"] = _list(self.bias_after_step)
        return values


@dataclass(frozen=True)
class BackpropTrace:
    """The whole trace: input, every layer, loss, input gradients and the gradient check."""

    raw_input: FloatArray
    network_input: FloatArray
    target: FloatArray
    label: str
    layers: tuple[LayerTrace, ...]
    output: FloatArray
    loss: float
    loss_name: str
    grad_loss_output: FloatArray
    grad_input: FloatArray
    grad_raw_input: FloatArray
    gradient_check: GradientCheck
    learning_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """API.md's /backprop JSON (without `model_version`, which the service adds)."""
        with_step = self.learning_rate is not None
        return {
            "input": {"raw": self.raw_input.tolist(), "network_input": self.network_input.tolist()},
            "target": self.target.tolist(),
            "label": self.label,
            "layers": [layer.to_dict(with_step) for layer in self.layers],
            "output": self.output.tolist(),
            "loss": self.loss,
            "loss_name": self.loss_name,
            "grad_loss_output": self.grad_loss_output.tolist(),
            "grad_input": self.grad_input.tolist(),
            "grad_raw_input": self.grad_raw_input.tolist(),
            "gradient_check": self.gradient_check.to_dict(),
        }


def _list(array: FloatArray | None) -> list[Any] | None:
    return None if array is None else array.tolist()


def _check_step(learning_rate: float | None, epsilon: float) -> None:
    if learning_rate is not None and not (
        isinstance(learning_rate, Real) and math.isfinite(learning_rate) and learning_rate > 0
    ):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if not (isinstance(epsilon, Real) and 0 < epsilon <= MAX_EPSILON):
        raise ValueError(f"epsilon must be > 0 and <= {MAX_EPSILON}, got {epsilon!r}")


def trace_backprop(
    clf_or_network: Classifier | Network,
    x: Sequence[float],
    label: str | int | float,
    learning_rate: float | None = None,
    epsilon: float = DEFAULT_EPSILON,
) -> BackpropTrace:
    """Forward and backward for one sample, with a central-difference gradient check.

    `x` is in raw feature units (standardised here for a Classifier); `label` is a
    class index or name (for a binary model 1 or the positive class gives t = 1).
    The model itself is never modified. Raises ValueError for a bad x, label,
    learning rate or epsilon, or when the values overflow float64.
    """
    if isinstance(clf_or_network, Classifier):
        clf: Classifier | None = clf_or_network
        network, features = clf_or_network.network, clf_or_network.features
        classes = clf_or_network.classes
    else:
        clf, network = None, clf_or_network
        features = [f"x{i + 1}" for i in range(network.n_inputs)]
        classes = default_classes(network)
    _check_step(learning_rate, epsilon)
    X_raw = parse_sample(x, features)
    index = label_index(label, classes)
    T = target_row(index, network)
    with np.errstate(all="ignore"):  # an overflow is refused below, not warned on stderr
        X = clf.network_input(X_raw) if clf is not None else X_raw
        trace = _trace(network.copy(), X_raw, X, T, classes[index], learning_rate, epsilon, clf)
    if not _finite(trace):
        raise ValueError(
            "the values overflow float64 for this input and these weights; "
            "use smaller weights or inputs"
        )
    return trace


def _trace(
    net: Network,
    X_raw: FloatArray,
    X: FloatArray,
    T: FloatArray,
    label: str,
    learning_rate: float | None,
    epsilon: float,
    clf: Classifier | None,
) -> BackpropTrace:
    loss_fn = net.loss
    a = net.forward(X)
    assert net.layers[-1].z is not None
    loss = loss_fn.value(net.layers[-1].z, T)
    grad_y = loss_fn.grad_output(net.layers[-1].z, T)
    grad_outputs, deltas, g = _backward_keeping_values(net, grad_y, loss_fn.delta(a, T))
    analytic = np.concatenate((net.grad, g.ravel()))
    numeric_theta, numeric_X = numerical_gradients(net, X, T, epsilon)
    check = compare(analytic, np.concatenate((numeric_theta, numeric_X.ravel())), loss, epsilon)
    grad_raw = g / clf.std if clf is not None and clf.std is not None else g
    layers = tuple(
        _layer_trace(layer, grad_outputs[i][0], deltas[i][0], learning_rate)
        for i, layer in enumerate(net.layers)
    )
    return BackpropTrace(
        raw_input=X_raw[0],
        network_input=X[0],
        target=T[0],
        label=label,
        layers=layers,
        output=a[0],
        loss=loss,
        loss_name=loss_fn.name,
        grad_loss_output=grad_y[0],
        grad_input=g[0],
        grad_raw_input=grad_raw[0],
        gradient_check=check,
        learning_rate=learning_rate,
    )


def _backward_keeping_values(
    net: Network, grad_y: FloatArray, delta: FloatArray
) -> tuple[list[FloatArray], list[FloatArray], FloatArray]:
    """Backward pass that keeps each layer's dJ/da and dJ/dz: (grad_outputs, deltas, dJ/dX).

    The output layer starts from the stable delta (a - t), not grad_y * a (1 - a);
    see model.losses.
    """
    grad_outputs: list[FloatArray] = [grad_y] * len(net.layers)
    deltas: list[FloatArray] = [delta] * len(net.layers)
    g = net.layers[-1].backward_delta(delta)
    for i in range(len(net.layers) - 2, -1, -1):
        layer = net.layers[i]
        assert layer.a is not None
        grad_outputs[i] = g
        deltas[i] = layer.act.backward(layer.a, g)
        g = layer.backward_delta(deltas[i])
    return grad_outputs, deltas, g


def _layer_trace(
    layer: Dense, grad_output: FloatArray, delta: FloatArray, learning_rate: float | None
) -> LayerTrace:
    assert layer.a is not None and layer.z is not None
    a = layer.a[0]
    if layer.act.derivative is None:
        derivative = None
        slope = a * (1.0 - a)  # the softmax Jacobian's diagonal
    else:
        derivative = slope = layer.act.derivative(a)
    W, b, dW = layer.W.copy(), None if layer.b is None else layer.b.copy(), layer.dW.copy()
    db = None if layer.db is None else layer.db.copy()
    W_after = b_after = None
    if learning_rate is not None:
        W_after = W - learning_rate * dW
        b_after = None if b is None or db is None else b - learning_rate * db
    return LayerTrace(
        name=layer.name,
        activation=layer.activation,
        weights=W,
        bias=b,
        pre_activation=layer.z[0],
        output=a,
        activation_derivative=derivative,
        grad_output=grad_output,
        grad_pre_activation=delta,
        grad_weights=dW,
        grad_bias=db,
        saturated=tuple(int(i) for i in np.flatnonzero(slope < SATURATION_THRESHOLD)),
        weights_after_step=W_after,
        bias_after_step=b_after,
    )


def _finite(trace: BackpropTrace) -> bool:
    arrays: list[FloatArray | None] = [
        trace.network_input,
        trace.output,
        trace.grad_loss_output,
        trace.grad_input,
        trace.grad_raw_input,
        np.array(
            [trace.loss, trace.gradient_check.max_abs_error, trace.gradient_check.max_rel_error]
        ),
    ]
    for layer in trace.layers:
        arrays += [
            layer.pre_activation,
            layer.output,
            layer.activation_derivative,
            layer.grad_output,
            layer.grad_pre_activation,
            layer.grad_weights,
            layer.grad_bias,
            layer.weights_after_step,
            layer.bias_after_step,
        ]
    return all(array is None or bool(np.all(np.isfinite(array))) for array in arrays)
