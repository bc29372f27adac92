"""Activations and their derivatives."""

from __future__ import annotations

import numpy as np
import pytest

from model.activations import ACTIVATIONS, get_activation, sigmoid, softmax, softmax_backward

Z = np.linspace(-6, 6, 49).reshape(7, 7)


def test_sigmoid_is_stable_at_extremes() -> None:
    z = np.array([-1000.0, -745.0, -40.0, 0.0, 40.0, 1000.0])
    a = sigmoid(z)  # -W error::RuntimeWarning turns any overflow warning into a failure
    assert a[0] == 0.0 and a[-1] == 1.0 and a[3] == 0.5
    assert 0 < a[2] < 1e-17  # small values keep their relative precision
    np.testing.assert_allclose(a[2], np.exp(-40.0) / (1 + np.exp(-40.0)), rtol=1e-15)


def test_sigmoid_matches_the_textbook_formula() -> None:
    np.testing.assert_allclose(sigmoid(Z), 1 / (1 + np.exp(-Z)), rtol=1e-15)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "identity"])
def test_derivative_from_output_matches_central_difference(name: str) -> None:
    act = ACTIVATIONS[name]
    z = Z + 0.0625  # keep ReLU away from its kink at 0
    eps = 1e-6
    numeric = (act.forward(z + eps) - act.forward(z - eps)) / (2 * eps)
    assert act.derivative is not None
    np.testing.assert_allclose(act.derivative(act.forward(z)), numeric, rtol=1e-6, atol=1e-9)


def test_step_is_the_perceptron_with_zero_derivative() -> None:
    step = ACTIVATIONS["step"]
    np.testing.assert_array_equal(step.forward(np.array([-1.0, 0.0, 1e-9, 2.0])), [0, 0, 1, 1])
    assert step.differentiable is False
    assert step.derivative is not None
    np.testing.assert_array_equal(step.derivative(np.array([0.0, 1.0])), [0.0, 0.0])


def test_relu_and_tanh_values() -> None:
    np.testing.assert_array_equal(
        ACTIVATIONS["relu"].forward(np.array([-2.0, 0.0, 3.0])), [0, 0, 3]
    )
    np.testing.assert_allclose(ACTIVATIONS["tanh"].forward(np.array([0.5])), np.tanh(0.5))


def test_softmax_rows_are_probabilities_even_for_huge_logits() -> None:
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0], [1e6, 1e6, -1e6]])
    p = softmax(z)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[2], [0.5, 0.5, 0.0])
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(p[1], e / e.sum(), rtol=1e-15)


def test_softmax_backward_is_the_jacobian_product() -> None:
    rng = np.random.default_rng(0)
    z, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    a = softmax(z)
    for i in range(4):
        jacobian = np.diag(a[i]) - np.outer(a[i], a[i])
        np.testing.assert_allclose(softmax_backward(a, g)[i], jacobian @ g[i], rtol=1e-12)
    assert ACTIVATIONS["softmax"].derivative is None


def test_unknown_activation_names_the_known_ones() -> None:
    with pytest.raises(
        ValueError, match="unknown activation 'swish'; expected one of step, sigmoid"
    ):
        get_activation("swish")
