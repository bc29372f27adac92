"""Backpropagation against central differences on many random networks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.activations import ACTIVATIONS, Activation, sigmoid_derivative
from model.gradcheck import (
    ATOL,
    RTOL,
    analytic_gradients,
    check_gradients,
    loss_at,
    numerical_gradients,
)
from model.layers import Dense
from model.losses import one_hot
from model.network import Network


def _random_problem(
    seed: int, depth: int, activation: str, output: str, bias: bool
) -> tuple[Network, np.ndarray, np.ndarray]:
    # Values come from NumPy rather than hypothesis: continuous draws almost surely avoid
    # ReLU's kink at 0, where a finite difference and the (one-sided) derivative differ.
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(1, 5))
    n_out = 1 if output == "sigmoid" else int(rng.integers(2, 5))
    hidden = [int(rng.integers(1, 6)) for _ in range(depth - 1)]
    net = Network.initialize(
        n_in,
        hidden,
        n_out,
        hidden_activation=activation,
        output_activation=output,
        rng=rng,
        bias=bias,
    )
    net.theta[:] = rng.normal(scale=1.5, size=net.theta.size)
    n = int(rng.integers(1, 6))
    X = rng.normal(scale=2.0, size=(n, n_in))
    T = one_hot(rng.integers(0, max(n_out, 2), size=n), n_out)
    return net, X, T


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    depth=st.integers(1, 3),
    activation=st.sampled_from(["sigmoid", "tanh", "relu", "identity"]),
    output=st.sampled_from(["sigmoid", "softmax"]),
    bias=st.booleans(),
)
def test_backprop_matches_central_differences(
    seed: int, depth: int, activation: str, output: str, bias: bool
) -> None:
    net, X, T = _random_problem(seed, depth, activation, output, bias)
    check = check_gradients(net, X, T)
    assert check.max_rel_error < 1e-6, check
    assert check.passed
    # And as one vector: the whole gradient's relative error, with the floor below which
    # finite differences are only trusted absolutely, as model.gradcheck sets it per
    # component (their rounding error, about ulp(J) / epsilon, grows with the loss),
    # times sqrt(n) for a norm over n components.
    analytic = np.concatenate([g.ravel() for g in analytic_gradients(net.copy(), X, T)])
    numeric = np.concatenate([g.ravel() for g in numerical_gradients(net.copy(), X, T)])
    floor = ATOL / RTOL * max(1.0, abs(loss_at(net, X, T))) * np.sqrt(analytic.size)
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric), floor)
    assert np.linalg.norm(analytic - numeric) / scale < RTOL


def test_check_leaves_network_unchanged() -> None:
    net, X, T = _random_problem(3, 3, "tanh", "softmax", True)
    before, X_before = net.theta.copy(), X.copy()
    check_gradients(net, X, T)
    np.testing.assert_array_equal(net.theta, before)
    np.testing.assert_array_equal(X, X_before)


def test_check_detects_a_wrong_derivative(monkeypatch: pytest.MonkeyPatch) -> None:
    # If backprop used a wrong sigmoid derivative, the check must say so.
    def wrong(a: np.ndarray) -> np.ndarray:
        return 1.1 * sigmoid_derivative(a)

    broken = Activation("sigmoid", ACTIVATIONS["sigmoid"].forward, wrong)
    monkeypatch.setitem(ACTIVATIONS, "sigmoid", broken)
    net, X, T = _random_problem(5, 2, "sigmoid", "sigmoid", True)
    check = check_gradients(net, X, T)
    assert not check.passed
    assert check.max_rel_error > 1e-3


def test_check_detects_a_wrong_weight_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Dense.backward_delta

    def doubled_bug(self: Dense, delta: np.ndarray) -> np.ndarray:
        result = original(self, delta)
        self.dW *= 2.0
        return result

    net, X, T = _random_problem(7, 2, "tanh", "softmax", False)
    monkeypatch.setattr(Dense, "backward_delta", doubled_bug)
    assert not check_gradients(net, X, T).passed


def test_step_network_has_zero_gradient_both_ways() -> None:
    # Step units pass no gradient back (derivative zero almost everywhere); away from
    # the threshold, finite differences agree that the loss is flat in the first layer.
    net = Network(
        [
            Dense("hidden", np.array([[1.0, -2.0]]), np.array([0.5, 0.25]), "step"),
            Dense("output", np.array([[1.0], [2.0]]), None, "sigmoid"),
        ]
    )
    X, T = np.array([[0.3]]), np.array([[1.0]])
    check = check_gradients(net, X, T)
    assert check.passed
    analytic, dX = analytic_gradients(net.copy(), X, T)
    np.testing.assert_array_equal(analytic[:4], 0.0)
    np.testing.assert_array_equal(dX, 0.0)
