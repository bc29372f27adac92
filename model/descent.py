"""Gradient descent on one sample: the lecture's last experiment.

    for i in range(steps):
        out = model.predict(x)
        loss.append(model.backward(label))
        model.grad_step(lr)

With label 1 the output is driven towards 1, with label 0 towards 0, and the loss
towards 0: a sanity check that the gradients point downhill. The model is never
modified; the descent runs on a copy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from model.classifier import Classifier
from model.network import Network
from model.samples import default_classes, label_index, parse_sample, target_row

MAX_STEPS = 10_000
MAX_LEARNING_RATE = 10.0


@dataclass(frozen=True)
class Descent:
    """Loss and output before any step (index 0) and after each of `steps` steps."""

    steps: int
    learning_rate: float
    loss: list[float]
    output: list[list[float]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "learning_rate": self.learning_rate,
            "loss": self.loss,
            "output": self.output,
        }


def _check(steps: int, learning_rate: float) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer from 0 to {MAX_STEPS}, got {steps!r}")
    if not (
        isinstance(learning_rate, Real)
        and math.isfinite(learning_rate)
        and 0 < learning_rate <= MAX_LEARNING_RATE
    ):
        raise ValueError(
            f"learning_rate must be > 0 and <= {MAX_LEARNING_RATE}, got {learning_rate!r}"
        )


def descend_one_sample(
    clf_or_network: Classifier | Network,
    x: Sequence[float],
    label: str | int | float,
    steps: int,
    learning_rate: float,
) -> Descent:
    """`steps` steps of plain gradient descent, theta := theta - alpha * grad, on one sample.

    `x` is in raw feature units (standardised here for a Classifier); `label` is a class
    index or name, as for `trace_backprop`. Returns steps + 1 losses and outputs.
    Raises ValueError for bad arguments or when the values overflow float64.
    """
    _check(steps, learning_rate)
    if isinstance(clf_or_network, Classifier):
        net, features = clf_or_network.network, clf_or_network.features
        classes = clf_or_network.classes
    else:
        net = clf_or_network
        features = [f"x{i + 1}" for i in range(net.n_inputs)]
        classes = default_classes(net)
    X_raw = parse_sample(x, features)
    X = clf_or_network.network_input(X_raw) if isinstance(clf_or_network, Classifier) else X_raw
    T = target_row(label_index(label, classes), net)
    net = net.copy()
    loss_fn = net.loss
    losses: list[float] = []
    outputs = np.empty((steps + 1, net.n_outputs))
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            a = net.forward(X)
            assert net.layers[-1].z is not None
            losses.append(loss_fn.value(net.layers[-1].z, T))
            outputs[k] = a[0]
            if k == steps:
                break
            net.parameter_gradients(loss_fn.delta(a, T))
            net.theta -= learning_rate * net.grad
    if not (np.all(np.isfinite(outputs)) and all(map(math.isfinite, losses))):
        raise ValueError(
            "the descent overflows float64 for these weights and this learning_rate; "
            "use a smaller learning_rate or fewer steps"
        )
    return Descent(steps, float(learning_rate), losses, outputs.tolist())
