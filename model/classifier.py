"""The served unit: a network plus its input standardisation and class names."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from model.activations import standardize_rows
from model.network import Network
from model.types import FloatArray


def utc_now() -> str:
    """The current time as ISO 8601 in UTC, e.g. 2024-05-01T12:00:00.123Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Classifier:
    """A trained network with everything needed to answer in raw feature units.

    Binary models have one sigmoid output, the probability of `classes[1]` (the
    positive class, e.g. "setosa" in ["not-setosa", "setosa"]); softmax models have
    one output per class. `predict_proba` always answers one column per class, in
    `classes` order. `mean` and `std` are the training set's z-score statistics, or
    None when inputs are not standardised. Shapes: mean, std (n_features,).
    """

    network: Network
    features: list[str]
    classes: list[str]
    target: str
    mean: FloatArray | None = None
    std: FloatArray | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        net = self.network
        if len(self.features) != net.n_inputs:
            raise ValueError(
                f"{len(self.features)} feature names for a network of {net.n_inputs} inputs"
            )
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            raise ValueError(f"classes must be at least 2 distinct names, got {self.classes}")
        self._check_output()
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must both be given or both be None")
        if self.mean is not None and self.std is not None:
            self.mean = np.array(self.mean, dtype=np.float64)
            self.std = np.array(self.std, dtype=np.float64)
            self._check_statistics(self.mean, self.std)
        self._binary = net.output_activation == "sigmoid"

    def _check_output(self) -> None:
        net = self.network
        if net.output_activation == "sigmoid":
            if net.n_outputs != 1 or len(self.classes) != 2:
                raise ValueError("a sigmoid output needs 1 unit and exactly 2 classes")
        elif net.output_activation == "softmax":
            if net.n_outputs != len(self.classes):
                raise ValueError(
                    f"a softmax output of {net.n_outputs} units for {len(self.classes)} classes"
                )
        else:
            raise ValueError(
                f"the output activation must be sigmoid or softmax, got {net.output_activation!r}"
            )

    def _check_statistics(self, mean: FloatArray, std: FloatArray) -> None:
        shape = (self.network.n_inputs,)
        if mean.shape != shape or std.shape != shape:
            raise ValueError(f"mean and std must have shape {shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
            raise ValueError("mean and std must be finite")
        if not np.all(std > 0):
            raise ValueError("std must be positive")

    @property
    def binary(self) -> bool:
        return self._binary

    @property
    def standardize(self) -> bool:
        return self.mean is not None

    def network_input(self, X_raw: FloatArray) -> FloatArray:
        """Raw features to the network's input (z-scored when standardised). Shapes: (n, d)."""
        X = np.asarray(X_raw, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        if self.mean is not None and self.std is not None:
            X = standardize_rows(X, self.mean, self.std)
        return X

    def predict_proba(self, X_raw: FloatArray) -> FloatArray:
        """One probability column per class, in `classes` order. Shapes: (n, d) -> (n, k)."""
        p = self.network.predict_proba(self.network_input(X_raw))
        if self._binary:  # [1 - p, p], written in place: cheaper than a concatenate
            both = np.empty((p.shape[0], 2))
            np.subtract(1.0, p, out=both[:, :1])
            both[:, 1:] = p
            return both
        return p

    def predict(self, X_raw: FloatArray) -> list[str]:
        """The most probable class name for each row (ties go to the earlier class)."""
        index = np.argmax(self.predict_proba(X_raw), axis=1)
        return [self.classes[i] for i in index]

    def manifest(self) -> dict[str, Any]:
        """The JSON-ready metadata `save_model` writes, sha256 of the weights file included."""
        from model.serialize import build_manifest

        return build_manifest(self)
