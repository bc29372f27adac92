"""Gradient check: backpropagation against central differences, for every parameter
and every input value.

    dJ/dtheta_k ~ (J(theta + eps e_k) - J(theta - eps e_k)) / (2 eps)

The estimate's truncation error is O(eps**2), but its rounding error is about
ulp(intermediate values) / eps, i.e. 1e-10 or more for eps = 1e-6, so components much
smaller than the rest cannot be checked relatively. A component therefore passes when

    |analytic - numeric| <= max(RTOL * max(|analytic|, |numeric|), ATOL * max(1, |J|))

that is, when the reported relative error, |analytic - numeric| divided by
max(|analytic|, |numeric|, ATOL / RTOL * max(1, |J|)), is at most RTOL: components
above 1e-2 (for |J| <= 1) are compared relatively, smaller ones absolutely (to 1e-8).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from model.network import Network
from model.types import FloatArray

METHOD = "central_difference"
DEFAULT_EPSILON = 1e-6
RTOL = 1e-6
ATOL = 1e-8


@dataclass(frozen=True)
class GradientCheck:
    """How far the analytic gradients are from the finite-difference estimates."""

    method: str
    epsilon: float
    max_abs_error: float
    max_rel_error: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def loss_at(net: Network, X: FloatArray, T: FloatArray) -> float:
    """The loss J of `net` on (X, T), from the output logits (no caching)."""
    return net.loss.value(net.logits(X), T)


def analytic_gradients(net: Network, X: FloatArray, T: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Backpropagated dJ/dtheta (flat, a copy) and dJ/dX. Shapes: X (n, d)."""
    a = net.forward(X)
    dX = net.backward_delta(net.loss.delta(a, T))
    return net.grad.copy(), dX


def numerical_gradients(
    net: Network, X: FloatArray, T: FloatArray, epsilon: float = DEFAULT_EPSILON
) -> tuple[FloatArray, FloatArray]:
    """Central-difference dJ/dtheta (flat) and dJ/dX; `net` and `X` are left unchanged."""
    theta = net.theta
    d_theta = np.empty_like(theta)
    for k in range(theta.size):
        saved = theta[k]
        theta[k] = saved + epsilon
        plus = loss_at(net, X, T)
        theta[k] = saved - epsilon
        minus = loss_at(net, X, T)
        theta[k] = saved
        d_theta[k] = (plus - minus) / (2.0 * epsilon)
    X = np.array(X, dtype=np.float64)
    dX = np.empty_like(X)
    for index in np.ndindex(*X.shape):
        saved = X[index]
        X[index] = saved + epsilon
        plus = loss_at(net, X, T)
        X[index] = saved - epsilon
        minus = loss_at(net, X, T)
        X[index] = saved
        dX[index] = (plus - minus) / (2.0 * epsilon)
    return d_theta, dX


def compare(
    analytic: FloatArray, numeric: FloatArray, loss: float, epsilon: float
) -> GradientCheck:
    """Max absolute and relative error between two flat gradient vectors."""
    abs_error = np.abs(analytic - numeric)
    floor = ATOL / RTOL * max(1.0, abs(loss))
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    rel_error = abs_error / scale
    max_abs = float(abs_error.max(initial=0.0))
    max_rel = float(rel_error.max(initial=0.0))
    return GradientCheck(METHOD, epsilon, max_abs, max_rel, bool(max_rel <= RTOL))


def check_gradients(
    net: Network,
    X: FloatArray,
    T: FloatArray,
    epsilon: float = DEFAULT_EPSILON,
) -> GradientCheck:
    """Compare backprop with central differences over every parameter and input value.

    Works on a copy of `net`. Shapes: X (n, d), T (n, n_outputs).
    """
    net = net.copy()
    X = np.asarray(X, dtype=np.float64)
    d_theta, dX = analytic_gradients(net, X, T)
    n_theta, n_X = numerical_gradients(net, X, T, epsilon)
    analytic = np.concatenate((d_theta, dX.ravel()))
    numeric = np.concatenate((n_theta, n_X.ravel()))
    return compare(analytic, numeric, loss_at(net, X, T), epsilon)
