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


def sigmoid(z: FloatArray) -> FloatArray:
    """The logistic function 1 / (1 + exp(-z)), stable for any z.

    Written as exp(-log(1 + exp(-z))): np.logaddexp(0, -z) computes log(1 + exp(-z))
    without overflow (it is about -z for very negative z), and exp of its negation
    only underflows, to 0, where the true value is below the smallest double. Four
    NumPy calls rather than seven: this runs twice in every served prediction.
    """
    return np.exp(-np.logaddexp(0.0, -z))


def sigmoid_derivative(a: FloatArray) -> FloatArray:
    """sigma'(z) = a (1 - a) with a = sigma(z)."""
    return a * (1.0 - a)


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


def softmax(z: FloatArray) -> FloatArray:
    """Row-wise softmax, stable: the row maximum is subtracted before exp.

    Shapes: z (n, k) -> (n, k).
    """
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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
        return grad_a * self.derivative(a)


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
