"""One sample for the backprop trace: its values and its label, checked at the door."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np

from model.network import Network
from model.types import FloatArray

MAX_INDEX_DIGITS = 18  # a class index written longer than this is no class's
SHOWN = 80  # characters of a refused label quoted back


def default_classes(network: Network) -> list[str]:
    """Class names of a bare network: "0", "1", ... (a sigmoid output has two)."""
    return [str(i) for i in range(max(2, network.n_outputs))]


def parse_sample(x: Sequence[float], features: list[str]) -> FloatArray:
    """x as a (1, d) array; ValueError naming the expected features. Shapes: (1, d)."""
    values = list(x) if isinstance(x, Sequence | np.ndarray) and not isinstance(x, str) else None
    if values is None or len(values) != len(features):
        got = len(values) if values is not None else type(x).__name__
        raise ValueError(f"x must have {len(features)} values ({', '.join(features)}), got {got}")
    for name, value in zip(features, values, strict=True):
        if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"x value for {name} must be a finite number, got {value!r}")
    return np.array([values], dtype=np.float64)


def label_index(label: str | int | float, classes: list[str]) -> int:
    """The class index of a label given as a class name or an index (also "1" or 1.0)."""
    index: int | None = None
    if isinstance(label, str):
        digits = label.strip().lstrip("+")
        if label in classes:
            index = classes.index(label)
        elif digits.isascii() and digits.isdigit() and len(digits) <= MAX_INDEX_DIGITS:
            index = int(digits)
    elif isinstance(label, int) and not isinstance(label, bool):
        index = label  # of any size: never converted to a float, which could overflow
    elif isinstance(label, Real) and not isinstance(label, bool):
        if math.isfinite(label) and float(label).is_integer():
            index = int(label)
    if index is None or not 0 <= index < len(classes):
        numbers = "0/1" if len(classes) == 2 else f"0 to {len(classes) - 1}"
        raise ValueError(
            f"label must be {numbers} or one of {', '.join(map(repr, classes))}, "
            f"got {_shown(label)}"
        )
    return index


def _shown(value: object) -> str:
    """``repr(value)``, cut short: a label may be thousands of characters long (and an
    int of more than 4,300 digits has no repr at all)."""
    if isinstance(value, int) and not -(10**SHOWN) < value < 10**SHOWN:
        return f"an integer of more than {SHOWN} digits"
    text = repr(value)
    return text if len(text) <= SHOWN else f"{text[: SHOWN - 3]}..."


def target_row(index: int, network: Network) -> FloatArray:
    """T for one sample: [[t]] for a sigmoid output, a one-hot row for softmax."""
    if network.n_outputs == 1:
        return np.array([[float(index)]])
    T = np.zeros((1, network.n_outputs))
    T[0, index] = 1.0
    return T
