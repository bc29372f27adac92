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
    assert np.all(np.isfinite(BCE.grad_output(a, T)))
    np.testing.assert_array_equal(BCE.delta(a, T), (a - T) / 4)
    zc = np.array([[1e6, -1e6, 0.0]])
    assert np.isclose(CCE.value(zc, np.array([[0.0, 1.0, 0.0]])), 2e6)
    assert np.all(np.isfinite(CCE.grad_output(softmax(zc), np.array([[0.0, 1.0, 0.0]]))))


def test_delta_is_grad_output_through_the_activation() -> None:
    # dJ/dz = dJ/da * da/dz, which simplifies to (a - T) / n for both pairings.
    z = np.array([[0.3], [-1.2], [2.0]])
    T = np.array([[1.0], [0.0], [0.0]])
    a = sigmoid(z)
    np.testing.assert_allclose(BCE.grad_output(a, T) * a * (1 - a), BCE.delta(a, T), rtol=1e-12)
    zc = np.array([[0.1, 0.2, -0.3], [1.0, -1.0, 0.0]])
    Tc = one_hot(np.array([2, 0]), 3)
    p = softmax(zc)
    g = CCE.grad_output(p, Tc)
    through = p * (g - np.sum(g * p, axis=1, keepdims=True))
    np.testing.assert_allclose(through, CCE.delta(p, Tc), rtol=1e-12, atol=1e-15)


def test_loss_pairs_with_output_activation() -> None:
    assert loss_for("sigmoid").name == "binary_cross_entropy"
    assert loss_for("softmax").name == "categorical_cross_entropy"


def test_one_hot_encodings() -> None:
    np.testing.assert_array_equal(one_hot(np.array([0, 1, 1]), 1), [[0.0], [1.0], [1.0]])
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
