"""Property tests (hypothesis) of the model's numerics: any finite input of any
magnitude gives probabilities in [0, 1] that sum to 1 (or, when standardising
overflows, a non-finite network input the service refuses), and losses and
gradients stay finite.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from model.classifier import Classifier
from model.losses import BinaryCrossEntropy, CategoricalCrossEntropy, one_hot
from model.network import Network

FINITE = st.floats(allow_nan=False, allow_infinity=False)  # every magnitude, subnormals too
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _check_probabilities(clf: Classifier, X: np.ndarray) -> None:
    """Rows of moderate size always get valid probabilities; a row so large that the
    network overflows may come out non-finite (the service answers it 422, naming the
    row), but a finite answer is always a valid distribution."""
    with np.errstate(all="ignore"):
        P = clf.predict_proba(X)
    assert P.shape == (X.shape[0], len(clf.classes))
    for row_x, row_p in zip(X, P, strict=True):
        if np.abs(row_x).max() <= 1e100:
            assert np.isfinite(row_p).all(), (row_x, row_p)
        if np.isfinite(row_p).all():
            assert ((row_p >= 0) & (row_p <= 1)).all(), row_p
            assert abs(row_p.sum() - 1.0) < 1e-9, row_p


@PROPERTY
@given(data=st.data())
def test_binary_model_probabilities_for_any_finite_row(
    default_model: Classifier, data: st.DataObject
) -> None:
    X = data.draw(arrays(np.float64, (data.draw(st.integers(1, 8)), 2), elements=FINITE))
    _check_probabilities(default_model, X)


@PROPERTY
@given(data=st.data())
def test_softmax_model_probabilities_for_any_finite_row(
    species_model: Classifier, data: st.DataObject
) -> None:
    X = data.draw(arrays(np.float64, (data.draw(st.integers(1, 8)), 4), elements=FINITE))
    _check_probabilities(species_model, X)


WEIGHT = st.floats(-1e6, 1e6, allow_nan=False)
LOGIT = st.floats(-1e300, 1e300, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    z=arrays(np.float64, st.tuples(st.integers(1, 16), st.just(1)), elements=LOGIT),
    labels=st.lists(st.integers(0, 1), min_size=16, max_size=16),
)
def test_binary_loss_and_gradients_are_finite(z: np.ndarray, labels: list[int]) -> None:
    T = np.array(labels[: z.shape[0]], dtype=np.float64).reshape(-1, 1)
    loss = BinaryCrossEntropy()
    a = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
    assert np.isfinite(loss.value(z, T)) and loss.value(z, T) >= 0
    assert np.isfinite(loss.grad_output(z, T)).all()
    assert np.isfinite(loss.delta(a, T)).all()


@settings(max_examples=200, deadline=None)
@given(
    z=arrays(np.float64, st.tuples(st.integers(1, 16), st.just(3)), elements=LOGIT),
    labels=st.lists(st.integers(0, 2), min_size=16, max_size=16),
)
def test_categorical_loss_and_gradients_are_finite(z: np.ndarray, labels: list[int]) -> None:
    T = one_hot(np.array(labels[: z.shape[0]]), 3)
    loss = CategoricalCrossEntropy()
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    a = shifted / shifted.sum(axis=1, keepdims=True)
    assert np.isfinite(loss.value(z, T)) and loss.value(z, T) >= -1e-9
    assert np.isfinite(loss.grad_output(z, T)).all()
    assert np.isfinite(loss.delta(a, T)).all()


@settings(max_examples=100, deadline=None)
@given(
    W=arrays(np.float64, (2, 3), elements=WEIGHT),
    V=arrays(np.float64, (3, 1), elements=WEIGHT),
    X=arrays(np.float64, st.tuples(st.integers(1, 8), st.just(2)), elements=WEIGHT),
    hidden=st.sampled_from(["sigmoid", "tanh", "relu"]),
    label=st.integers(0, 1),
)
def test_network_gradients_are_finite(
    W: np.ndarray, V: np.ndarray, X: np.ndarray, hidden: str, label: int
) -> None:
    """A whole backward pass (sigmoid output, binary cross-entropy) over large weights."""
    spec = [
        {"weights": W.tolist(), "bias": [0.0] * 3, "activation": hidden},
        {"weights": V.tolist(), "bias": [0.0], "activation": "sigmoid"},
    ]
    network = Network.from_spec(spec)
    with np.errstate(over="ignore"):  # exp overflow saturates to 0/1 on purpose
        a = network.forward(X)
        T = np.full((X.shape[0], 1), float(label))
        network.parameter_gradients(network.loss.delta(a, T))
    assert ((a >= 0) & (a <= 1)).all()
    for name, grad in network.gradients().items():
        assert np.isfinite(grad).all(), name
