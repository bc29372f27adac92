"""The 150 Iris flowers by column, for the decision surface (points, ranges, means).

The table itself is `model/iris.csv`, read by `model.data` with NumPy only, so the
serving process never imports scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from model.data import IRIS_FEATURES, iris_arrays
from model.types import FloatArray

IRIS_SPECIES = ("setosa", "versicolor", "virginica")


@dataclass(frozen=True)
class IrisTable:
    """Measurements in cm and species names. Shapes: X (150, 4), species (150,)."""

    X: FloatArray
    species: tuple[str, ...]

    def column(self, feature: str) -> FloatArray:
        """One feature's 150 values (ValueError for a name that is not an Iris feature)."""
        if feature not in IRIS_FEATURES:
            raise ValueError(f"{feature!r} is not an Iris feature; they are {list(IRIS_FEATURES)}")
        return self.X[:, IRIS_FEATURES.index(feature)]


@cache
def iris() -> IrisTable:
    """The Iris table, read once per process (read-only arrays)."""
    X, species = iris_arrays()
    return IrisTable(X, species)
