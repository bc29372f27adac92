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

# dJ/da is computed from the logits: 1 / sigma(z) = 1 + exp(-z), and 1 / softmax(z)_k =
# sum_j exp(z_j - z_k), exact even where a rounds to 0 or 1. Exponents are capped at
# MAX_EXPONENT, so a value beyond float64's range reads about 8e307 instead of inf.
MAX_EXPONENT = 709.0


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

    def grad_output(self, z: FloatArray, T: FloatArray) -> FloatArray:
        """dJ/da = (-t / a + (1 - t) / (1 - a)) / n for a = sigmoid(z), from the logits:
        -t (1 + exp(-z)) + (1 - t) (1 + exp(z)). Shapes: z, T (n, 1)."""
        with np.errstate(over="ignore"):
            inverse_a = 1.0 + np.exp(np.minimum(-z, MAX_EXPONENT))
            inverse_1_minus_a = 1.0 + np.exp(np.minimum(z, MAX_EXPONENT))
        return (-T * inverse_a + (1.0 - T) * inverse_1_minus_a) / z.shape[0]

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

    def grad_output(self, z: FloatArray, T: FloatArray) -> FloatArray:
        """dJ/da = -T / a / n for a = softmax(z), from the logits: 1 / a_k is
        sum_j exp(z_j - z_k). Shapes: z, T (n, k)."""
        gaps = np.minimum(z[:, None, :] - z[:, :, None], MAX_EXPONENT)  # [i, k, j]: z_j - z_k
        with np.errstate(over="ignore"):  # a sum past float64's range is capped below
            inverse_a = np.minimum(np.exp(gaps).sum(axis=2), np.finfo(np.float64).max)
        return -T * inverse_a / z.shape[0]

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
