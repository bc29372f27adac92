"""Activation functions from the lecture, each with its derivative right beside it.

A derivative is written in terms of the activation's *output* `a` (as scikit-learn
does), so backward never recomputes the forward pass: sigmoid' = a (1 - a),
tanh' = 1 - a**2, ReLU' = [a > 0].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.types import FloatArray


def step(z: FloatArray) -> FloatArray:
    """The perceptron's activation: 1 where z > 0, else 0."""
    return (z > 0).astype(np.float64)


def step_derivative(a: FloatArray) -> FloatArray:
    """Zero: the step function is flat everywhere except at 0, where it has no derivative.

    So no gradient flows through a step unit (this is why the perceptron is not
    trained by backpropagation); we report the derivative that holds almost everywhere.
    """
    return np.zeros_like(a)


# From this many elements on, sigmoid and softmax take their bulk forms (training
# batches, large prediction bodies); below it, the forms with the fewest calls.
BULK_SIZE = 512


def sigmoid(z: FloatArray) -> FloatArray:
    """The logistic function 1 / (1 + exp(-z)), stable for any z.

    Small arrays: exp(-log(1 + exp(-z))), where np.logaddexp(0, -z) computes
    log(1 + exp(-z)) without overflow (it is about -z for very negative z), and exp of
    its negation only underflows, to 0, where the true value is below the smallest
    double. Four NumPy calls: this runs twice in every served prediction.

    Large arrays: 1 / (1 + exp(-z)) in place, about ten times faster than logaddexp
    per element. exp(-z) overflows to inf for z < -709, and 1 / inf is 0, where the
    true value is below 1e-308 (the small form gives a subnormal there); the overflow
    flag is silenced for that one call. Elsewhere both agree to a few units in the
    last place.
    """
    if z.size < BULK_SIZE:
        return np.exp(-np.logaddexp(0.0, -z))
    out = np.negative(z, dtype=np.float64)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def sigmoid_derivative(a: FloatArray) -> FloatArray:
    """sigma'(z) = a (1 - a) with a = sigma(z)."""
    d = 1.0 - a
    d *= a  # in place: one array fewer on a training batch, the same values
    return d


def tanh(z: FloatArray) -> FloatArray:
    """Hyperbolic tangent."""
    return np.tanh(z)


def tanh_derivative(a: FloatArray) -> FloatArray:
    """tanh'(z) = 1 - a**2 with a = tanh(z)."""
    return 1.0 - a * a


def relu(z: FloatArray) -> FloatArray:
    """Rectified linear unit max(0, z)."""
    return np.maximum(z, 0.0)


def relu_derivative(a: FloatArray) -> FloatArray:
    """1 where the unit is active (a > 0), else 0 (we take 0 at z = 0)."""
    return (a > 0).astype(np.float64)


def identity(z: FloatArray) -> FloatArray:
    """The linear activation a = z."""
    return z


def identity_derivative(a: FloatArray) -> FloatArray:
    """Ones."""
    return np.ones_like(a)


def row_max(z: FloatArray) -> FloatArray:
    """The maximum of each row, shape (n, 1). Shapes: z (n, k).

    NumPy reduces a short last axis slowly (an inner loop per row); for a few columns
    of many rows, k - 1 elementwise maxima over whole columns are several times faster.
    """
    if z.ndim != 2 or z.shape[1] > 8 or z.size < BULK_SIZE:
        return z.max(axis=-1, keepdims=True)
    m = z[:, :1].copy()
    for j in range(1, z.shape[1]):
        np.maximum(m, z[:, j : j + 1], out=m)
    return m


def add_row(z: FloatArray, b: FloatArray) -> FloatArray:
    """z += b for every row of z, in place; returns z. Shapes: z (n, k), b (k,).

    Broadcasting a short row over many rows runs NumPy's inner loop k elements at a
    time; for a few columns, one strided addition per column is several times faster,
    with the same sums.
    """
    if z.ndim != 2 or z.shape[1] > 8 or z.size < BULK_SIZE:
        z += b
        return z
    for j in range(z.shape[1]):
        column = z[:, j]
        column += b[j]
    return z


def standardize_rows(X: FloatArray, mean: FloatArray, std: FloatArray) -> FloatArray:
    """(X - mean) / std as a new array, column by column for a few columns of many rows
    (the same arithmetic, faster, as for ``add_row``). Shapes: X (n, d), mean, std (d,)."""
    if X.ndim != 2 or X.shape[1] > 8 or X.size < BULK_SIZE:
        return (X - mean) / std
    out = np.empty_like(X)
    for j in range(X.shape[1]):
        column = out[:, j]
        np.subtract(X[:, j], mean[j], out=column)
        np.divide(column, std[j], out=column)
    return out


def row_sum(z: FloatArray) -> FloatArray:
    """The sum of each row, shape (n, 1), as one matrix product (fast for short rows)."""
    if z.ndim != 2 or z.size < BULK_SIZE:
        return z.sum(axis=-1, keepdims=True)
    return z @ np.ones((z.shape[1], 1))


def softmax(z: FloatArray) -> FloatArray:
    """Row-wise softmax, stable: the row maximum is subtracted before exp.

    Shapes: z (n, k) -> (n, k).
    """
    e = np.exp(z - row_max(z))
    return e / row_sum(e)


def softmax_backward(a: FloatArray, grad_a: FloatArray) -> FloatArray:
    """dJ/dz from dJ/da for a softmax output: a * (g - sum(g * a)) per row.

    The softmax Jacobian diag(a) - a a^T is not diagonal, so this is a
    Jacobian-vector product rather than an elementwise derivative.
    Shapes: a, grad_a (n, k) -> (n, k).
    """
    return a * (grad_a - np.sum(grad_a * a, axis=-1, keepdims=True))


@dataclass(frozen=True)
class Activation:
    """One activation: its forward map and its backward rule.

    `derivative` maps the output a to da/dz elementwise; it is None for softmax,
    whose Jacobian is not diagonal (use `backward`, which handles both cases).
    """

    name: str
    forward: Callable[[FloatArray], FloatArray]
    derivative: Callable[[FloatArray], FloatArray] | None
    differentiable: bool = True

    def backward(self, a: FloatArray, grad_a: FloatArray) -> FloatArray:
        """dJ/dz from the output a and dJ/da. Shapes: a, grad_a (n, units)."""
        if self.derivative is None:
            return softmax_backward(a, grad_a)
        d = self.derivative(a)  # a fresh array for every activation: scaled in place
        d *= grad_a
        return d


ACTIVATIONS: dict[str, Activation] = {
    "step": Activation("step", step, step_derivative, differentiable=False),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_derivative),
    "tanh": Activation("tanh", tanh, tanh_derivative),
    "relu": Activation("relu", relu, relu_derivative),
    "identity": Activation("identity", identity, identity_derivative),
    "softmax": Activation("softmax", softmax, None),
}

HIDDEN_ACTIVATIONS = ("step", "sigmoid", "tanh", "relu", "identity")
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax")


def get_activation(name: str) -> Activation:
    """The activation called `name`, or a ValueError listing the known ones."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        known = ", ".join(ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; expected one of {known}") from None
