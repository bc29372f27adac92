"""Optimizers: one update of the flat parameter vector theta from its gradient.

`gd` and `sgd` share the lecture's rule theta := theta - alpha * grad; they differ only
in how much data each gradient sees (the whole training set or a mini-batch), which is
the training loop's business. `adam` is Kingma & Ba (2015), Algorithm 1. `lbfgs`
(model/lbfgs.py) is no per-step rule: it needs the loss itself for its line search, so
the training loop drives it directly.
"""

from __future__ import annotations

import numpy as np

from model.types import FloatArray

OPTIMIZERS = ("gd", "sgd", "adam", "lbfgs")


class GradientDescent:
    """theta := theta - learning_rate * grad (in place)."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate

    def step(self, theta: FloatArray, grad: FloatArray) -> None:
        theta -= self.learning_rate * grad


class Adam:
    """Adam with bias-corrected first and second moment estimates (in place)."""

    def __init__(
        self,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.learning_rate = learning_rate
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m: FloatArray | None = None
        self.v: FloatArray | None = None

    def step(self, theta: FloatArray, grad: FloatArray) -> None:
        if self.m is None or self.v is None:
            self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        self.m *= self.beta1
        self.m += (1.0 - self.beta1) * grad
        self.v *= self.beta2
        self.v += (1.0 - self.beta2) * grad * grad
        # Both bias corrections folded into the step size: the ordering the paper gives
        # at the end of its Section 2 as the more efficient equivalent.
        alpha = self.learning_rate * np.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        theta -= alpha * self.m / (np.sqrt(self.v) + self.eps)


Optimizer = GradientDescent | Adam


def make_optimizer(name: str, learning_rate: float) -> Optimizer:
    """The per-step optimizer called `name` (gd, sgd or adam; lbfgs is model.lbfgs.LBFGS)."""
    if name in ("gd", "sgd"):
        return GradientDescent(learning_rate)
    if name == "adam":
        return Adam(learning_rate)
    if name == "lbfgs":
        raise ValueError("lbfgs has no per-step rule; model.train runs it with model.lbfgs")
    raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
