"""Independent references: scikit-learn's MLPClassifier and LogisticRegression."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from model.data import make_dataset
from model.layers import Dense
from model.network import Network
from model.train import TrainConfig, train


def _fitted_mlp(hidden: tuple[int, ...], X: np.ndarray, y: np.ndarray) -> MLPClassifier:
    """An MLPClassifier fitted for one iteration, only so that its weights exist."""
    mlp = MLPClassifier(hidden_layer_sizes=hidden, activation="logistic", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
    return mlp


@pytest.mark.parametrize(
    ("target", "hidden"),
    [("setosa", (3,)), ("versicolor", (4, 2)), ("species", (3,)), ("species", (5, 4, 3))],
)
def test_same_weights_give_mlpclassifier_probabilities(
    target: str, hidden: tuple[int, ...]
) -> None:
    data = make_dataset(None, target)
    mlp = _fitted_mlp(hidden, data.X, data.y)
    rng = np.random.default_rng(len(hidden))
    sizes = [4, *hidden, 1 if target != "species" else 3]
    Ws = [rng.normal(size=(a, b)) for a, b in zip(sizes, sizes[1:], strict=False)]
    bs = [rng.normal(size=b) for b in sizes[1:]]
    mlp.coefs_, mlp.intercepts_ = Ws, bs
    output = "sigmoid" if target != "species" else "softmax"
    names = ["output"] if len(Ws) == 1 else [f"h{i}" for i in range(len(Ws) - 1)] + ["output"]
    net = Network(
        [
            Dense(name, W, b, output if name == "output" else "sigmoid")
            for name, W, b in zip(names, Ws, bs, strict=True)
        ]
    )
    ours = net.predict_proba(data.X)
    theirs = mlp.predict_proba(data.X)
    if output == "sigmoid":
        ours = np.hstack([1 - ours, ours])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def _unpenalised_logistic_regression() -> LogisticRegression:
    # scikit-learn 1.8 deprecates penalty=None in favour of C=inf; both mean no penalty.
    major, minor = (int(part) for part in sklearn.__version__.split(".")[:2])
    if (major, minor) >= (1, 8):
        return LogisticRegression(C=np.inf, tol=1e-12, max_iter=100_000)
    return LogisticRegression(penalty=None, tol=1e-12, max_iter=100_000)


def test_no_hidden_layer_trained_to_convergence_is_logistic_regression() -> None:
    # The lecture: logistic regression is a single sigmoid neuron. Versicolor against the
    # rest is not linearly separable, so the unpenalised maximum likelihood fit is finite
    # and unique; full-batch gradient descent must reach the same probabilities.
    config = TrainConfig(
        features=None,
        target="versicolor",
        hidden_units=0,
        optimizer="gd",
        learning_rate=1.0,
        max_epochs=50_000,
        tolerance=1e-10,
        test_fraction=0.0,
    )
    clf = train(config)
    assert clf.metrics["converged"] is True
    assert [layer.name for layer in clf.network.layers] == ["output"]
    data = make_dataset(None, "versicolor")
    reference = _unpenalised_logistic_regression().fit(data.X, data.y)
    np.testing.assert_allclose(
        clf.predict_proba(data.X), reference.predict_proba(data.X), rtol=0, atol=1e-3
    )


def test_lbfgs_is_as_accurate_as_mlpclassifiers_lbfgs_on_the_same_split() -> None:
    from model.data import stratified_split

    config = TrainConfig(features=None, target="species", optimizer="lbfgs", hidden_units=4)
    ours = train(config).metrics["test_accuracy"]
    data = make_dataset(None, "species")
    train_idx, test_idx = stratified_split(data.y, config.test_fraction, np.random.default_rng(0))
    mean, std = data.X[train_idx].mean(axis=0), data.X[train_idx].std(axis=0)
    mlp = MLPClassifier(
        hidden_layer_sizes=(4,),
        activation="logistic",
        solver="lbfgs",
        max_iter=1000,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit((data.X[train_idx] - mean) / std, data.y[train_idx])
    theirs = mlp.score((data.X[test_idx] - mean) / std, data.y[test_idx])
    assert ours >= theirs - 1 / 30 + 1e-9, (ours, theirs)  # at most one flower of 30 behind
