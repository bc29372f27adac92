"""The 150 Iris flowers as package data (`iris.csv`), read without scikit-learn.

The serving process needs the flowers (the decision surface's points, each feature's
range and mean) but must not import scikit-learn, which costs a second and tens of
megabytes per worker. The table is scikit-learn's bundled copy written out once; a test
checks that the two agree value for value.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from model.types import FloatArray

IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
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
    text = resources.files("model").joinpath("iris.csv").read_text(encoding="utf-8")
    header, *lines = text.strip().splitlines()
    if header.split(",") != [*IRIS_FEATURES, "species"]:
        raise ValueError(f"iris.csv has an unexpected header: {header!r}")
    rows = [line.split(",") for line in lines]
    X = np.array([[float(v) for v in row[:4]] for row in rows], dtype=np.float64)
    X.setflags(write=False)
    return IrisTable(X, tuple(row[4] for row in rows))
