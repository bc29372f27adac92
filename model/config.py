"""TrainConfig: every training option, validated once, with JSON-ready round trips."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from model.data import CUSTOM_TARGET, IRIS_TARGETS, MAX_FEATURES
from model.optimizers import OPTIMIZERS

HIDDEN_ACTIVATION_CHOICES = ("sigmoid", "tanh", "relu")
MAX_HIDDEN_UNITS = 64
MAX_EPOCHS = 100_000
MAX_LEARNING_RATE = 10.0
MAX_BATCH_SIZE = 100_000
MAX_TEST_FRACTION = 0.5
DEFAULT_FEATURES = ("sepal_length", "sepal_width")


def _integer(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def _number(name: str, value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _features(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise ValueError(f"features must be a list of names, got {value!r}")
    features = tuple(value)
    if not 1 <= len(features) <= MAX_FEATURES:
        raise ValueError(
            f"features must name between 1 and {MAX_FEATURES} columns, got {len(features)}"
        )
    if not all(isinstance(f, str) and f for f in features):
        raise ValueError(f"features must be non-empty strings, got {list(features)}")
    if len(set(features)) != len(features):
        raise ValueError(f"features must be distinct, got {list(features)}")
    return features


@dataclass(frozen=True)
class TrainConfig:
    """How to train one model; the defaults give the lecture's network.

    The default model: sepal length and width, setosa against the rest, 3 sigmoid
    hidden units and a sigmoid output, trained by full-batch gradient descent.
    `features=None` means every column of the data (all four Iris measurements, or
    all of a caller's table). `target` picks the Iris task; with a caller's table
    its labels define the classes, `target` is ignored and recorded as "custom"
    (which in turn needs a table). `batch_size` only matters for
    sgd and adam. Training stops after `max_epochs` epochs, or earlier once one
    epoch moves the parameters by less than `tolerance`: norm(theta - theta_prev).
    """

    features: tuple[str, ...] | None = DEFAULT_FEATURES
    target: str = "setosa"
    hidden_units: int = 3
    hidden_activation: str = "sigmoid"
    optimizer: str = "gd"
    learning_rate: float = 1.0
    batch_size: int = 32
    max_epochs: int = 5000
    tolerance: float = 1e-3
    standardize: bool = True
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.features is not None:
            object.__setattr__(self, "features", _features(self.features))
        _choice("target", self.target, (*IRIS_TARGETS, CUSTOM_TARGET))
        _integer("hidden_units", self.hidden_units, 0, MAX_HIDDEN_UNITS)
        _choice("hidden_activation", self.hidden_activation, HIDDEN_ACTIVATION_CHOICES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        learning_rate = _number("learning_rate", self.learning_rate)
        if not 0 < learning_rate <= MAX_LEARNING_RATE:
            raise ValueError(
                f"learning_rate must be > 0 and <= {MAX_LEARNING_RATE}, got {learning_rate}"
            )
        object.__setattr__(self, "learning_rate", learning_rate)
        _integer("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        _integer("max_epochs", self.max_epochs, 1, MAX_EPOCHS)
        tolerance = _number("tolerance", self.tolerance)
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        object.__setattr__(self, "tolerance", tolerance)
        if not isinstance(self.standardize, bool):
            raise ValueError(f"standardize must be true or false, got {self.standardize!r}")
        test_fraction = _number("test_fraction", self.test_fraction)
        if not 0 <= test_fraction <= MAX_TEST_FRACTION:
            raise ValueError(
                f"test_fraction must be between 0 and {MAX_TEST_FRACTION}, got {test_fraction}"
            )
        object.__setattr__(self, "test_fraction", test_fraction)
        _integer("seed", self.seed, 0, 2**63 - 1)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """A config from JSON-like values; missing keys take their defaults."""
        if not isinstance(values, dict):
            raise ValueError(f"a training config must be a mapping, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown training option(s) {', '.join(map(str, unknown))}; "
                f"expected some of {', '.join(sorted(known))}"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (features as a list, or None)."""
        values = asdict(self)
        values["features"] = None if self.features is None else list(self.features)
        return values
