"""Cross-entropy losses: values, gradients, stability."""

from __future__ import annotations

import numpy as np

from model.activations import sigmoid, softmax
from model.losses import BinaryCrossEntropy, CategoricalCrossEntropy, loss_for, one_hot

BCE, CCE = BinaryCrossEntropy(), CategoricalCrossEntropy()


def test_binary_cross_entropy_matches_the_textbook_formula() -> None:
    z = np.array([[-3.0], [0.5], [2.0], [0.0]])
    T = np.array([[0.0], [1.0], [1.0], [0.0]])
    a = sigmoid(z)
    expected = -np.mean(T * np.log(a) + (1 - T) * np.log(1 - a))
    assert np.isclose(BCE.value(z, T), expected, rtol=1e-14)


def test_categorical_cross_entropy_matches_the_textbook_formula() -> None:
    z = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]])
    T = one_hot(np.array([1, 0]), 3)
    expected = -np.mean(np.sum(T * np.log(softmax(z)), axis=1))
    assert np.isclose(CCE.value(z, T), expected, rtol=1e-14)


def test_losses_are_finite_for_huge_logits() -> None:
    z = np.array([[1e6], [-1e6], [1e6], [-1e6]])
    T = np.array([[0.0], [1.0], [1.0], [0.0]])
    assert np.isclose(BCE.value(z, T), (1e6 + 1e6) / 4)
    a = sigmoid(z)
    assert np.all(np.isfinite(BCE.grad_output(z, T)))
    np.testing.assert_array_equal(BCE.delta(a, T), (a - T) / 4)
    zc = np.array([[1e6, -1e6, 0.0]])
    assert np.isclose(CCE.value(zc, np.array([[0.0, 1.0, 0.0]])), 2e6)
    assert np.all(np.isfinite(CCE.grad_output(zc, np.array([[0.0, 1.0, 0.0]]))))


def test_delta_is_grad_output_through_the_activation() -> None:
    # dJ/dz = dJ/da * da/dz, which simplifies to (a - T) / n for both pairings.
    z = np.array([[0.3], [-1.2], [2.0]])
    T = np.array([[1.0], [0.0], [0.0]])
    a = sigmoid(z)
    np.testing.assert_allclose(BCE.grad_output(z, T) * a * (1 - a), BCE.delta(a, T), rtol=1e-12)
    zc = np.array([[0.1, 0.2, -0.3], [1.0, -1.0, 0.0]])
    Tc = one_hot(np.array([2, 0]), 3)
    p = softmax(zc)
    g = CCE.grad_output(zc, Tc)
    through = p * (g - np.sum(g * p, axis=1, keepdims=True))
    np.testing.assert_allclose(through, CCE.delta(p, Tc), rtol=1e-12, atol=1e-15)


def test_loss_pairs_with_output_activation() -> None:
    assert loss_for("sigmoid").name == "binary_cross_entropy"
    assert loss_for("softmax").name == "categorical_cross_entropy"


def test_one_hot_encodings() -> None:
    np.testing.assert_array_equal(one_hot(np.array([0, 1, 1]), 1), [[0.0], [1.0], [1.0]])
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


def test_grad_output_is_exact_where_the_probability_rounds_to_0_or_1() -> None:
    # sigma(40) rounds to 1.0, so no formula in a could give dJ/da = 1 + e^40 for t = 0.
    z = np.array([[30.0], [-30.0], [40.0], [-0.5]])
    T = np.array([[0.0], [1.0], [0.0], [1.0]])
    expected = [[1 + np.exp(30)], [-(1 + np.exp(30))], [1 + np.exp(40)], [-(1 + np.exp(0.5))]]
    np.testing.assert_allclose(BCE.grad_output(z, T) * 4, expected, rtol=1e-14)
    zc = np.array([[-30.0, 0.0, -1.0]])
    g = CCE.grad_output(zc, np.array([[1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(g, [[-(1 + np.exp(30) + np.exp(29)), 0.0, 0.0]], rtol=1e-14)


def test_grad_output_beyond_float64_is_capped_not_infinite() -> None:
    z = np.array([[800.0], [-800.0]])
    g = BCE.grad_output(z, np.array([[0.0], [1.0]]))
    assert np.all(np.isfinite(g)) and g[0, 0] > 1e307 and g[1, 0] < -1e307
    gc = CCE.grad_output(np.array([[-800.0, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0]]))
    assert np.all(np.isfinite(gc)) and gc[0, 0] < -1e307
