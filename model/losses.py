"""Cross-entropy losses, mean over the batch, computed stably from the logits z.

Binary cross-entropy goes with one sigmoid output, categorical cross-entropy with a
softmax output. Both share the same simple output delta:

    dJ/dz = (a - T) / n

because the activation's derivative cancels the loss's 1/a terms (for the sigmoid,
dJ/da = (a - t) / (a (1 - a)) and da/dz = a (1 - a)). Training uses this delta
directly, which never divides by a (1 - a) and so stays finite when a unit saturates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.activations import row_max, row_sum
from model.types import FloatArray, IntArray

# Probabilities are clipped to [EPS, 1 - EPS] before any division by them (dJ/da).
EPS = 1e-12


@dataclass(frozen=True)
class BinaryCrossEntropy:
    """J = -mean(t log a + (1 - t) log(1 - a)) for a = sigmoid(z)."""

    name: str = "binary_cross_entropy"

    def value(self, z: FloatArray, T: FloatArray) -> float:
        """Loss from the logits. Shapes: z, T (n, 1).

        -log sigma(z) = log(1 + exp(-z)) rewritten as max(z, 0) - z t + log1p(exp(-|z|)),
        finite for every finite z.
        """
        per_unit = np.maximum(z, 0.0) - z * T + np.log1p(np.exp(-np.abs(z)))
        return float(per_unit.sum() / z.shape[0])

    def grad_output(self, a: FloatArray, T: FloatArray) -> FloatArray:
        """dJ/da = (-t / a + (1 - t) / (1 - a)) / n. Shapes: a, T (n, 1)."""
        a = np.clip(a, EPS, 1.0 - EPS)
        return (-T / a + (1.0 - T) / (1.0 - a)) / a.shape[0]

    def delta(self, a: FloatArray, T: FloatArray) -> FloatArray:
        """dJ/dz = (a - T) / n. Shapes: a, T (n, 1)."""
        d = a - T
        d /= a.shape[0]
        return d


@dataclass(frozen=True)
class CategoricalCrossEntropy:
    """J = -mean(sum_k T_k log a_k) for a = softmax(z)."""

    name: str = "categorical_cross_entropy"

    def value(self, z: FloatArray, T: FloatArray) -> float:
        """Loss from the logits: logsumexp(z) - sum(T z), per row. Shapes: z, T (n, k)."""
        m = row_max(z)
        log_sum_exp = m + np.log(row_sum(np.exp(z - m)))
        # sum over rows of lse * sum_k T_k - sum_k T_k z_k, as two whole-array sums.
        return float(((log_sum_exp * T).sum() - (z * T).sum()) / z.shape[0])

    def grad_output(self, a: FloatArray, T: FloatArray) -> FloatArray:
        """dJ/da = -T / a / n. Shapes: a, T (n, k)."""
        return -T / np.clip(a, EPS, None) / a.shape[0]

    def delta(self, a: FloatArray, T: FloatArray) -> FloatArray:
        """dJ/dz = (a - T) / n. Shapes: a, T (n, k)."""
        d = a - T
        d /= a.shape[0]
        return d


Loss = BinaryCrossEntropy | CategoricalCrossEntropy

LOSSES: dict[str, Loss] = {"sigmoid": BinaryCrossEntropy(), "softmax": CategoricalCrossEntropy()}


def loss_for(output_activation: str) -> Loss:
    """The loss that pairs with an output activation (sigmoid or softmax)."""
    try:
        return LOSSES[output_activation]
    except KeyError:
        raise ValueError(
            f"no loss for output activation {output_activation!r}; "
            "the last layer must be sigmoid (binary cross-entropy) "
            "or softmax (categorical cross-entropy)"
        ) from None


def one_hot(y: IntArray, n_outputs: int) -> FloatArray:
    """Targets T for class indices y: a column of 0/1 when n_outputs == 1, else one-hot.

    Shapes: y (n,) -> T (n, n_outputs).
    """
    if n_outputs == 1:
        return y.astype(np.float64).reshape(-1, 1)
    T = np.zeros((y.shape[0], n_outputs))
    T[np.arange(y.shape[0]), y] = 1.0
    return T
