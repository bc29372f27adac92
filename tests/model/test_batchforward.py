"""The serving forward pass of many rows gives `Classifier.predict_proba`'s doubles, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.activations import HIDDEN_ACTIVATIONS
from model.batchforward import BatchForward
from model.classifier import Classifier
from model.layers import Dense
from model.network import Network


def _classifier(
    hidden: str,
    output: str,
    standardize: bool,
    seed: int,
    *,
    n_in: int = 3,
    units: int = 4,
    bias: bool = True,
    scale: float = 2.0,
) -> Classifier:
    rng = np.random.default_rng(seed)
    n_out = 1 if output == "sigmoid" else 3
    classes = ["no", "yes"] if output == "sigmoid" else ["a", "b", "c"]
    layers = [
        Dense("hidden", rng.normal(0, scale, (n_in, units)), rng.normal(0, 1, units), hidden),
        Dense(
            "output",
            rng.normal(0, scale, (units, n_out)),
            rng.normal(0, 1, n_out) if bias else None,
            output,
        ),
    ]
    return Classifier(
        Network(layers),
        features=[f"x{i}" for i in range(n_in)],
        classes=classes,
        target="t",
        mean=rng.normal(5, 1, n_in) if standardize else None,
        std=rng.uniform(0.5, 2, n_in) if standardize else None,
    )


def _same(ours: np.ndarray, expected: np.ndarray) -> None:
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    # Bit for bit, NaN included (overflowing rows must fail the same way).
    assert ours.tobytes() == expected.tobytes()


@pytest.mark.parametrize("hidden", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_equals_predict_proba(hidden: str, output: str, standardize: bool, bias: bool) -> None:
    clf = _classifier(hidden, output, standardize, seed=len(hidden) * 7 + len(output), bias=bias)
    forward = BatchForward(clf)
    rng = np.random.default_rng(3)
    # Small and bulk forms, first tiles and grown ones, and past the tiles' limit.
    for rows in (1, 2, 50, 63, 64, 127, 128, 500, 1000, 3000, 4097, 9000):
        X = rng.normal(5, 3, (rows, 3)) * rng.choice([1.0, 10.0, 1e3], (rows, 1))
        _same(forward(X), clf.predict_proba(X))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 1500),
    n_in=st.integers(1, 12),
    units=st.integers(1, 20),
    scale=st.sampled_from([0.1, 2.0, 50.0]),
    hidden=st.sampled_from(HIDDEN_ACTIVATIONS),
    output=st.sampled_from(["sigmoid", "softmax"]),
    standardize=st.booleans(),
)
def test_equals_predict_proba_for_any_shape(
    seed: int,
    rows: int,
    n_in: int,
    units: int,
    scale: float,
    hidden: str,
    output: str,
    standardize: bool,
) -> None:
    clf = _classifier(hidden, output, standardize, seed, n_in=n_in, units=units, scale=scale)
    X = np.random.default_rng(seed).normal(0, 20, (rows, n_in))
    _same(BatchForward(clf)(X), clf.predict_proba(X))


def test_overflowing_rows_give_the_same_non_finite_values() -> None:
    clf = _classifier("relu", "softmax", False, seed=5)
    X = np.random.default_rng(6).normal(0, 1, (1000, 3))
    X[17] = 1e308  # finite, but the network overflows
    with np.errstate(over="ignore", invalid="ignore"):
        expected = clf.predict_proba(X)
    assert not np.isfinite(expected[17]).all()
    _same(BatchForward(clf)(X), expected)


def test_the_default_model(default_model: Classifier) -> None:
    X = np.random.default_rng(7).normal(5, 2, (1000, 2))
    _same(BatchForward(default_model)(X), default_model.predict_proba(X))


def test_the_weights_stay_the_models() -> None:
    clf = _classifier("sigmoid", "sigmoid", True, seed=8)
    before = [layer.W.copy() for layer in clf.network.layers]
    BatchForward(clf)(np.ones((1000, 3)))
    for layer, W in zip(clf.network.layers, before, strict=True):
        assert np.array_equal(layer.W, W)


def test_its_tiles_stay_within_their_bound() -> None:
    from model.batchforward import TILE_BYTES

    for units in (4, 30):  # a 30-unit layer's bias is wide enough to broadcast instead
        forward = BatchForward(_classifier("tanh", "softmax", True, seed=9, units=units))
        for rows in (100, 1000, 9000):
            forward(np.ones((rows, 3)))
            tiles = forward._tiles
            arrays = [a for a in (tiles.mean, tiles.std, *tiles.biases) if a is not None]
            assert sum(a.nbytes for a in arrays) <= TILE_BYTES
            assert all(a.shape[1] <= 8 for a in arrays)
