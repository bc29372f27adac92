"""L-BFGS: the optimizer on its own, and as `optimizer="lbfgs"` in training."""

from __future__ import annotations

import numpy as np
import pytest

from model.activations import BULK_SIZE, sigmoid, softmax
from model.data import Table
from model.lbfgs import LBFGS
from model.losses import one_hot
from model.network import Network
from model.train import PLATEAU_EPOCHS, TrainConfig, TrainingCancelled, train
from model.types import FloatArray


def test_minimises_a_quadratic_to_its_exact_minimum_never_raising_the_loss() -> None:
    rng = np.random.default_rng(0)
    M = rng.normal(size=(20, 20))
    A = M @ M.T + np.eye(20)  # symmetric positive definite, condition number in the 100s
    b = rng.normal(size=20)

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        return float(0.5 * theta @ A @ theta - b @ theta), A @ theta - b

    theta = np.zeros(20)
    solver = LBFGS(objective, theta)
    for _ in range(200):
        step = solver.step()
        assert step.loss <= step.loss_before
        if not step.moved or np.linalg.norm(solver.grad) < 1e-10:
            break
    np.testing.assert_allclose(theta, np.linalg.solve(A, b), atol=1e-8)
    assert len(solver.pairs) <= solver.memory


def test_a_stationary_start_does_not_move() -> None:
    theta = np.zeros(3)
    solver = LBFGS(lambda t: (float(t @ t), 2 * t), theta)
    step = solver.step()
    assert not step.moved and step.evaluations == 0
    assert theta.tolist() == [0.0, 0.0, 0.0]


def test_objective_gradient_is_the_backward_pass_and_matches_finite_differences() -> None:
    """What lbfgs minimises: the same loss and backward pass as gd (checked numerically)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 4))  # > BULK_SIZE elements in the hidden layer: bulk forms
    T = one_hot(rng.integers(0, 3, size=700), 3)
    net = Network.initialize(
        4, [5], 3, hidden_activation="sigmoid", output_activation="softmax", rng=rng
    )

    def loss_at(theta: FloatArray) -> float:
        net.theta[...] = theta
        net.forward(X)
        assert net.layers[-1].z is not None
        return net.loss.value(net.layers[-1].z, T)

    theta = net.theta.copy()
    a = net.forward(X)
    net.parameter_gradients(net.loss.delta(a, T))
    analytic = net.grad.copy()
    eps = 1e-6
    numeric = np.array(
        [
            (loss_at(theta + eps * e) - loss_at(theta - eps * e)) / (2 * eps)
            for e in np.eye(theta.size)
        ]
    )
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_bulk_sigmoid_and_softmax_agree_with_the_small_forms() -> None:
    z = np.linspace(-800, 800, 4 * BULK_SIZE).reshape(-1, 4)
    small = np.vstack([sigmoid(row) for row in z])
    np.testing.assert_allclose(sigmoid(z), small, rtol=1e-14, atol=1e-300)  # subnormals
    assert sigmoid(z).min() == 0.0 and sigmoid(z).max() == 1.0
    np.testing.assert_allclose(softmax(z), np.vstack([softmax(r[None]) for r in z]), rtol=1e-14)


def test_training_with_lbfgs_is_deterministic_and_learns() -> None:
    config = TrainConfig(features=None, target="species", optimizer="lbfgs", hidden_units=4)
    first, second = train(config), train(config)
    np.testing.assert_array_equal(first.network.theta, second.network.theta)
    assert first.metrics == {**second.metrics, "seconds": first.metrics["seconds"]}
    assert first.metrics["converged"] is True
    assert first.metrics["test_accuracy"] >= 0.9
    other = train(TrainConfig(**{**config.to_dict(), "features": None, "seed": 1}))
    assert not np.array_equal(first.network.theta, other.network.theta)


def test_lbfgs_stops_on_a_loss_plateau_on_separable_data() -> None:
    # Setosa is separable: the step rule alone would never hold while the weights grow.
    clf = train(TrainConfig(optimizer="lbfgs"))
    metrics = clf.metrics
    assert metrics["converged"] is True and metrics["epochs"] < 1000
    assert metrics["epochs"] >= PLATEAU_EPOCHS
    assert metrics["test_accuracy"] == 1.0 and metrics["train_loss"] > 0
    assert clf.training["optimizer"] == "lbfgs"


def test_lbfgs_ignores_the_learning_rate() -> None:
    a = train(TrainConfig(optimizer="lbfgs", learning_rate=0.01, max_epochs=20))
    b = train(TrainConfig(optimizer="lbfgs", learning_rate=5.0, max_epochs=20))
    np.testing.assert_array_equal(a.network.theta, b.network.theta)


def test_lbfgs_trains_a_callers_table_with_a_hidden_layer_of_16() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 8))
    labels = np.array(["a", "b", "c"])[np.argmax(X[:, :3] + 0.1 * X[:, 3:6], axis=1)]
    clf = train(
        TrainConfig(features=None, hidden_units=16, optimizer="lbfgs"),
        Table([f"x{i}" for i in range(8)], X, labels.tolist()),
    )
    assert clf.metrics["test_accuracy"] >= 0.95


def test_lbfgs_reports_progress_and_can_be_cancelled() -> None:
    seen: list[int] = []
    train(TrainConfig(optimizer="lbfgs", max_epochs=30), progress=lambda p: seen.append(p.epoch))
    assert seen and seen[-1] <= 30
    with pytest.raises(TrainingCancelled):
        train(TrainConfig(optimizer="lbfgs", tolerance=0), progress=lambda p: False)
