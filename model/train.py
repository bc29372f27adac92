"""The training loop: gradient descent on cross-entropy, as in the lecture.

    while norm(theta - theta_prev) > tolerance:
        theta_prev = theta
        theta = theta_prev - step_size * gradient(theta_prev)

`gd` computes each gradient on the whole training set, `sgd` and `adam` on shuffled
mini-batches (one epoch = one pass over the data). `lbfgs` is full-batch too, one
quasi-Newton iteration per epoch (model/lbfgs.py): it picks its own step length by a
line search on the loss, so it ignores learning_rate. Besides the step rule it stops
on a plateau: when the training loss fell by less than `tolerance` over the last
PLATEAU_EPOCHS iterations (on separable data the weights grow without end while the
loss creeps to 0, so the step rule alone would run to max_epochs). All randomness (split, initial
weights, shuffling) comes from one `np.random.Generator` seeded by `config.seed`, so a
run is reproducible bit for bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from model.classifier import Classifier
from model.config import TrainConfig
from model.data import Dataset, Table, make_dataset, stratified_split
from model.lbfgs import LBFGS
from model.losses import Loss, one_hot
from model.network import Network
from model.optimizers import make_optimizer
from model.types import FloatArray, IntArray

__all__ = ["Progress", "TrainConfig", "TrainingCancelled", "train"]

MAX_HISTORY = 200
# lbfgs also stops once the loss fell by less than `tolerance` over this many epochs.
PLATEAU_EPOCHS = 10
# Between history points, progress is still reported at least this often (seconds).
PROGRESS_INTERVAL = 0.5


@dataclass(frozen=True)
class Progress:
    """Where a run stands: the training loss and accuracy after `epoch` epochs."""

    epoch: int
    max_epochs: int
    loss: float
    train_accuracy: float


class TrainingCancelled(Exception):
    """The progress callback returned False."""


ProgressCallback = Callable[[Progress], bool | None]


def _evaluate(net: Network, X: FloatArray, y: IntArray) -> tuple[float, float]:
    """Mean loss and accuracy of `net` on (X, y). Shapes: X (n, d), y (n,)."""
    z = net.logits(X)
    loss = net.loss.value(z, one_hot(y, net.n_outputs))
    if not math.isfinite(loss):
        raise ValueError(
            "the loss overflowed (inputs or weights too large for float64); "
            "standardize the inputs or lower the learning_rate"
        )
    predicted = (z[:, 0] > 0).astype(np.int64) if net.n_outputs == 1 else z.argmax(axis=1)
    return loss, float(np.mean(predicted == y))


def _standardizer(X: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Training-set mean and std; a constant column keeps std 1 (it is only centred)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = X.mean(axis=0)
        std = X.std(axis=0)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ValueError(
            "feature values are too large to standardize in float64; rescale them "
            "(e.g. to other units) before training"
        )
    return mean, np.where(std > 0, std, 1.0)


def _epoch(
    net: Network,
    X: FloatArray,
    T: FloatArray,
    config: TrainConfig,
    step: Callable[[FloatArray, FloatArray], None],
    rng: np.random.Generator,
    loss: Loss,
) -> None:
    """One pass over the training data: one full-batch step, or one per mini-batch."""
    if config.optimizer == "gd":
        a = net.forward(X)
        net.parameter_gradients(loss.delta(a, T))
        step(net.theta, net.grad)
        return
    order = rng.permutation(X.shape[0])
    for start in range(0, X.shape[0], config.batch_size):
        batch = order[start : start + config.batch_size]
        a = net.forward(X[batch])
        net.parameter_gradients(loss.delta(a, T[batch]))
        step(net.theta, net.grad)


def _build(config: TrainConfig, data: Dataset, rng: np.random.Generator) -> Network:
    binary = len(data.classes) == 2
    return Network.initialize(
        data.X.shape[1],
        [config.hidden_units] if config.hidden_units else [],
        1 if binary else len(data.classes),
        hidden_activation=config.hidden_activation,
        output_activation="sigmoid" if binary else "softmax",
        rng=rng,
    )


class _Monitor:
    """Keeps the history (at most MAX_HISTORY points) and calls the progress callback."""

    def __init__(self, max_epochs: int, progress: ProgressCallback | None) -> None:
        self.max_epochs = max_epochs
        self.progress = progress
        self.stride = max(1, math.ceil(max_epochs / (MAX_HISTORY - 1)))
        self.history: list[dict[str, Any]] = []
        self.reported_at = time.perf_counter()

    def after_epoch(self, net: Network, X: FloatArray, y: IntArray, epoch: int, last: bool) -> None:
        record = epoch % self.stride == 0 or last
        now = time.perf_counter()
        report = self.progress is not None and (
            record or now - self.reported_at >= PROGRESS_INTERVAL
        )
        if not (record or report):
            return
        loss, accuracy = _evaluate(net, X, y)
        if record:
            self.history.append({"epoch": epoch, "loss": loss, "train_accuracy": accuracy})
        if report and self.progress is not None:
            self.reported_at = now
            if self.progress(Progress(epoch, self.max_epochs, loss, accuracy)) is False:
                raise TrainingCancelled(f"training cancelled at epoch {epoch}")


def _descend(
    net: Network,
    X: FloatArray,
    y: IntArray,
    config: TrainConfig,
    rng: np.random.Generator,
    monitor: _Monitor,
) -> tuple[int, bool]:
    """Epochs until norm(theta - theta_prev) < tolerance or max_epochs: (epochs, converged)."""
    if config.optimizer == "lbfgs":
        return _quasi_newton(net, X, y, config, monitor)
    T = one_hot(y, net.n_outputs)
    step = make_optimizer(config.optimizer, config.learning_rate).step
    loss = net.loss
    epoch, converged = 0, False
    # Overflow can only come from diverging weights, which the finiteness check reports.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(1, config.max_epochs + 1):
            theta_prev = net.theta.copy()
            _epoch(net, X, T, config, step, rng, loss)
            moved = net.theta - theta_prev
            step_norm = math.sqrt(float(moved @ moved))
            # The norm itself may overflow for huge but finite weights; that is no error.
            if not math.isfinite(step_norm) and not np.all(np.isfinite(net.theta)):
                raise ValueError(
                    f"training diverged at epoch {epoch} (non-finite weights); "
                    f"lower the learning_rate (now {config.learning_rate}) or standardize"
                )
            converged = step_norm < config.tolerance
            monitor.after_epoch(net, X, y, epoch, converged or epoch == config.max_epochs)
            if converged:
                break
    net.clear_cache()
    return epoch, converged


def _quasi_newton(
    net: Network, X: FloatArray, y: IntArray, config: TrainConfig, monitor: _Monitor
) -> tuple[int, bool]:
    """L-BFGS iterations, one per epoch, under the same stopping rule as _descend.

    It also stops (converged) on a loss plateau (see the module docstring), or when a
    line search finds no lower loss along its direction: the weights are then at a
    minimum as far as float64 can tell.
    """
    T = one_hot(y, net.n_outputs)
    loss = net.loss
    output = net.layers[-1]

    def objective(theta: FloatArray) -> tuple[float, FloatArray]:
        # theta is net.theta itself, which the solver updates in place.
        a = net.forward(X)
        assert output.z is not None
        value = loss.value(output.z, T)
        net.parameter_gradients(loss.delta(a, T))
        return value, net.grad

    epoch, converged = 0, False
    with np.errstate(over="ignore", invalid="ignore"):
        solver = LBFGS(objective, net.theta)
        losses = [solver.loss]
        for epoch in range(1, config.max_epochs + 1):
            theta_prev = net.theta.copy()
            step = solver.step()
            moved = net.theta - theta_prev
            step_norm = math.sqrt(float(moved @ moved))
            losses.append(step.loss)
            plateau = epoch >= PLATEAU_EPOCHS and (
                losses[-1 - PLATEAU_EPOCHS] - step.loss < config.tolerance
            )
            converged = step_norm < config.tolerance or plateau or not step.moved
            monitor.after_epoch(net, X, y, epoch, converged or epoch == config.max_epochs)
            if converged:
                break
    net.clear_cache()
    return epoch, converged


def train(
    config: TrainConfig,
    data: Table | None = None,
    progress: ProgressCallback | None = None,
) -> Classifier:
    """Train a classifier on Iris (or on `data`) as `config` says.

    `progress` is called with the training loss and accuracy at most once per epoch
    (at each history point, at least every PROGRESS_INTERVAL seconds, and after the
    last epoch); returning False stops the run with TrainingCancelled. Raises
    ValueError for bad data or when the weights diverge to non-finite values.
    Metrics' `seconds` is the fit's wall time, loading the data excluded.
    """
    rng = np.random.default_rng(config.seed)
    dataset = make_dataset(config.features, config.target, data)
    started = time.perf_counter()
    train_idx, test_idx = stratified_split(dataset.y, config.test_fraction, rng)
    X_train, y_train = dataset.X[train_idx], dataset.y[train_idx]
    mean = std = None
    if config.standardize:
        mean, std = _standardizer(X_train)
        X_train = (X_train - mean) / std
    net = _build(config, dataset, rng)
    monitor = _Monitor(config.max_epochs, progress)
    epochs, converged = _descend(net, X_train, y_train, config, rng, monitor)
    clf = Classifier(
        network=net,
        features=dataset.features,
        classes=dataset.classes,
        target=dataset.target,
        mean=mean,
        std=std,
        training={**config.to_dict(), "target": dataset.target},
        history=monitor.history,
    )
    with np.errstate(over="ignore", invalid="ignore"):
        clf.metrics = _metrics(clf, dataset, train_idx, test_idx)
    clf.metrics.update(
        epochs=epochs, converged=converged, seconds=round(time.perf_counter() - started, 6)
    )
    return clf


def _metrics(
    clf: Classifier, dataset: Dataset, train_idx: IntArray, test_idx: IntArray
) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for split, idx in (("train", train_idx), ("test", test_idx)):
        if idx.size == 0:
            metrics[f"{split}_accuracy"] = metrics[f"{split}_loss"] = None
            continue
        loss, accuracy = _evaluate(clf.network, clf.network_input(dataset.X[idx]), dataset.y[idx])
        metrics[f"{split}_accuracy"], metrics[f"{split}_loss"] = accuracy, loss
    return {key: metrics[key] for key in sorted(metrics)}
