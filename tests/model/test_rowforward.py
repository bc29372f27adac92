"""The single-row forward pass on Python floats agrees with the NumPy one."""

from __future__ import annotations

import numpy as np
import pytest

from model.classifier import Classifier
from model.layers import Dense
from model.network import Network
from model.rowforward import MAX_WEIGHTS, RowForward

RTOL, ATOL = 1e-12, 1e-15


def _classifier(
    hidden: str, output: str, standardize: bool, seed: int, *, units: int = 4, bias: bool = True
) -> Classifier:
    rng = np.random.default_rng(seed)
    n_in, n_out = 3, 1 if output == "sigmoid" else 3
    classes = ["no", "yes"] if output == "sigmoid" else ["a", "b", "c"]
    layers = [
        Dense("hidden", rng.normal(0, 2, (n_in, units)), rng.normal(0, 1, units), hidden),
        Dense(
            "output",
            rng.normal(0, 2, (units, n_out)),
            rng.normal(0, 1, n_out) if bias else None,
            output,
        ),
    ]
    return Classifier(
        Network(layers),
        features=["x", "y", "z"],
        classes=classes,
        target="t",
        mean=rng.normal(5, 1, n_in) if standardize else None,
        std=rng.uniform(0.5, 2, n_in) if standardize else None,
    )


@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
@pytest.mark.parametrize("standardize", [False, True])
def test_agrees_with_predict_proba(hidden: str, output: str, standardize: bool) -> None:
    clf = _classifier(hidden, output, standardize, seed=len(hidden) + len(output))
    row = RowForward.of(clf)
    assert row is not None
    rng = np.random.default_rng(1)
    for scale in (1.0, 10.0, 1e3, 1e6):
        for x in rng.normal(5, 3, (50, 3)) * scale:
            ours = row(x.tolist())
            assert ours is not None
            np.testing.assert_allclose(ours, clf.predict_proba(x[None, :])[0], rtol=RTOL, atol=ATOL)


def test_the_default_model_agrees(default_model: Classifier) -> None:
    row = RowForward.of(default_model)
    assert row is not None and row.width == 2
    for x in np.random.default_rng(2).normal(5, 2, (200, 2)):
        expected = default_model.predict_proba(x[None, :])[0]
        np.testing.assert_allclose(row(x.tolist()), expected, rtol=RTOL, atol=ATOL)
    assert row([5.1, 3.5]) == pytest.approx(default_model.predict_proba([[5.1, 3.5]])[0].tolist())


def test_a_layer_without_bias_agrees() -> None:
    clf = _classifier("tanh", "sigmoid", False, seed=3, bias=False)
    row = RowForward.of(clf)
    assert row is not None
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(row(x.tolist()), clf.predict_proba(x[None, :])[0], rtol=RTOL)


@pytest.mark.parametrize("hidden", ["relu", "identity", "sigmoid"])
def test_overflow_gives_none_so_the_numpy_path_words_it(hidden: str) -> None:
    clf = _classifier(hidden, "softmax", False, seed=4)
    row = RowForward.of(clf)
    assert row is not None
    assert row([1e308, -1e308, 1e308]) is None


def test_step_networks_keep_the_numpy_path() -> None:
    # A step unit jumps at 0, where another order of the sums could land on either side.
    assert RowForward.of(_classifier("step", "sigmoid", False, seed=6)) is None


def test_large_networks_keep_the_numpy_path() -> None:
    units = MAX_WEIGHTS // 3 + 1  # 3 inputs: the first layer alone is over the limit
    assert RowForward.of(_classifier("sigmoid", "sigmoid", True, seed=5, units=units)) is None
    assert RowForward.of(_classifier("sigmoid", "sigmoid", True, seed=5, units=4)) is not None


@pytest.mark.parametrize("shape", [(3, 2), (1000, 2), (1000, 5), (600, 9)])
def test_column_wise_bias_and_standardisation_are_the_broadcast_sums(shape: tuple) -> None:
    from model.activations import add_row, standardize_rows

    rng = np.random.default_rng(shape[0])
    X = rng.normal(0, 100, shape)
    b, mean, std = rng.normal(size=shape[1]), rng.normal(size=shape[1]), rng.uniform(1, 3, shape[1])
    np.testing.assert_array_equal(add_row(X.copy(), b), X + b)
    np.testing.assert_array_equal(standardize_rows(X, mean, std), (X - mean) / std)
