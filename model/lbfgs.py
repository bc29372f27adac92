"""L-BFGS: a quasi-Newton method on our own loss and gradients, for full-batch training.

Gradient descent steps along -grad with one fixed step size. L-BFGS steps along
-H grad, where H approximates the inverse Hessian from the last `memory` pairs
s = theta_new - theta, y = grad_new - grad (Nocedal & Wright, Numerical
Optimization, 2nd ed., 2006: Algorithm 7.4, the two-loop recursion, inside
Algorithm 7.5). The step length comes from a backtracking line search on the
Armijo condition f(theta + alpha d) <= f(theta) + c1 alpha grad.d, so the loss
never goes up and no learning rate is needed. A pair is kept only when s.y > 0
(curvature), which keeps H positive definite without a Wolfe line search.

The objective is any `f(theta) -> (loss, grad)`; training passes one that runs
`Network.forward` and `Network.parameter_gradients`, the same backward pass that
gd, sgd and adam use. Deterministic: no randomness at all.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from model.types import FloatArray

Objective = Callable[[FloatArray], tuple[float, FloatArray]]

MEMORY = 10
ARMIJO_C1 = 1e-4
MAX_BACKTRACKS = 30


@dataclass(frozen=True)
class Step:
    """The outcome of one iteration: the loss before and after, and the evaluations used."""

    loss_before: float
    loss: float
    evaluations: int
    moved: bool


class LBFGS:
    """Minimises an objective one iteration at a time, updating theta in place."""

    def __init__(self, objective: Objective, theta: FloatArray, memory: int = MEMORY) -> None:
        self.objective = objective
        self.theta = theta
        self.memory = memory
        self.pairs: deque[tuple[FloatArray, FloatArray, float]] = deque(maxlen=memory)
        loss, grad = objective(theta)
        self.loss = float(loss)
        self.grad = grad.copy()
        if not math.isfinite(self.loss):
            raise ValueError("the loss is not finite at the initial weights")

    def direction(self) -> FloatArray:
        """-H grad by the two-loop recursion; -grad (scaled to norm <= 1) with no pairs yet."""
        g = self.grad
        if not self.pairs:
            norm = math.sqrt(float(g @ g))
            return -g / max(1.0, norm)
        q = g.copy()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * float(s @ q)
            q -= a * y
            alphas.append(a)
        s, y, _ = self.pairs[-1]
        q *= float(s @ y) / float(y @ y)  # H0 = gamma I, N&W (7.20)
        for (s, y, rho), a in zip(self.pairs, reversed(alphas), strict=True):
            b = rho * float(y @ q)
            q += (a - b) * s
        return -q

    def step(self) -> Step:
        """One iteration: direction, Armijo backtracking, memory update."""
        d = self.direction()
        slope = float(self.grad @ d)
        if not slope < 0:  # not a descent direction (rounding): restart from -grad
            self.pairs.clear()
            d = self.direction()
            slope = float(self.grad @ d)
        if not slope < 0:  # the gradient is exactly zero: a stationary point
            return Step(self.loss, self.loss, 0, False)
        start = self.theta.copy()
        before = self.loss
        alpha, evaluations = 1.0, 0
        for _ in range(MAX_BACKTRACKS):
            evaluations += 1
            np.add(start, alpha * d, out=self.theta)
            loss, grad = self.objective(self.theta)
            if math.isfinite(loss) and loss <= before + ARMIJO_C1 * alpha * slope:
                break
            # Minimum of the quadratic through f(0), f'(0) and f(alpha), kept in
            # [0.1, 0.5] alpha (N&W (3.57)); plain halving when the loss overflowed.
            if math.isfinite(loss):
                curvature = loss - before - slope * alpha
                trial = -slope * alpha * alpha / (2.0 * curvature) if curvature > 0 else alpha / 2
                alpha = min(max(trial, 0.1 * alpha), 0.5 * alpha)
            else:
                alpha /= 2.0
        else:  # no decrease along d, even for a tiny step: stay where we were
            self.theta[...] = start
            self.pairs.clear()  # self.loss and self.grad still hold theta's values
            return Step(before, before, MAX_BACKTRACKS, False)
        s = self.theta - start
        y = grad - self.grad
        sy = float(s @ y)
        if sy > 1e-10 * float(y @ y):
            self.pairs.append((s, y, 1.0 / sy))
        self.loss = float(loss)
        self.grad = grad.copy()
        return Step(before, self.loss, evaluations, True)
