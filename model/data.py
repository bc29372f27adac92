"""Training data: the 150 Iris flowers shipped with this package, or a caller's own table.

Iris is `model/iris.csv`, package data read with NumPy only (scikit-learn is the test
reference for it, not a runtime dependency). It is read on first use, so the serving
process, which imports `model.network` and `model.serialize` but never trains, skips it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from model.types import FloatArray, IntArray

IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
IRIS_SPECIES = ("setosa", "versicolor", "virginica")
IRIS_TARGETS = (*IRIS_SPECIES, "species")
CUSTOM_TARGET = "custom"
MAX_ROWS = 100_000
MAX_COLUMNS = 1_024
MAX_FEATURES = 64
MAX_CLASSES = 64


@dataclass
class Table:
    """A caller's own table: named numeric columns and one string label per row.

    Validated on construction; `X` holds the rows as a float array.
    Shapes: rows (n, len(feature_names)), labels (n,).
    """

    feature_names: list[str]
    rows: list[list[float]] | FloatArray
    labels: list[str]
    X: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.feature_names = _feature_names(self.feature_names)
        self.X = _rows(self.rows, len(self.feature_names))
        self.labels = _labels(self.labels, self.X.shape[0])


def _feature_names(names: object) -> list[str]:
    if not isinstance(names, list | tuple) or not names:
        raise ValueError("feature_names must be a non-empty list of strings")
    if len(names) > MAX_COLUMNS:
        raise ValueError(f"a table may have at most {MAX_COLUMNS} columns, got {len(names)}")
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"feature names must be non-empty strings, got {name!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"feature_names must be distinct; repeated: {duplicates}")
    return list(names)


def _rows(rows: object, n_columns: int) -> FloatArray:
    if isinstance(rows, np.ndarray):
        if rows.ndim != 2:
            raise ValueError(f"rows must be a 2-D array, got {rows.ndim} dimension(s)")
        X = rows
    else:
        if not isinstance(rows, list | tuple):
            raise ValueError("rows must be a list of rows")
        for i, row in enumerate(rows):
            if not isinstance(row, list | tuple) or len(row) != n_columns:
                size = len(row) if isinstance(row, list | tuple) else "no"
                raise ValueError(
                    f"row {i} has {size} values but there are {n_columns} feature names"
                )
        X = np.array(rows) if rows else np.empty((0, n_columns))
    if X.shape[0] == 0:
        raise ValueError("the table has no rows")
    if X.shape[0] > MAX_ROWS:
        raise ValueError(f"a table may have at most {MAX_ROWS} rows, got {X.shape[0]}")
    if X.shape[1] != n_columns:
        raise ValueError(f"rows have {X.shape[1]} columns but there are {n_columns} names")
    if X.dtype.kind not in "fiu":
        raise ValueError(f"rows must hold only numbers, got values of type {X.dtype}")
    X = X.astype(np.float64)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = bad[0]
        raise ValueError(f"row {i}, column {j}: {X[i, j]} is not a finite number")
    return X


def _labels(labels: object, n_rows: int) -> list[str]:
    if not isinstance(labels, list | tuple):
        raise ValueError("labels must be a list of strings")
    if len(labels) != n_rows:
        raise ValueError(f"there are {len(labels)} labels for {n_rows} rows")
    for i, label in enumerate(labels):
        if not isinstance(label, str) or not label:
            raise ValueError(f"label {i} must be a non-empty string, got {label!r}")
    distinct = set(labels)
    if len(distinct) < 2:
        raise ValueError(f"labels must name at least 2 classes, got only {sorted(distinct)}")
    if len(distinct) > MAX_CLASSES:
        raise ValueError(f"labels may name at most {MAX_CLASSES} classes, got {len(distinct)}")
    return list(labels)


IRIS_FILE = "iris.csv"


@lru_cache(maxsize=1)
def iris_arrays() -> tuple[FloatArray, tuple[str, ...]]:
    """The packaged table: `#` comment lines, a header, then 150 rows of 4 numbers and a name."""
    text = resources.files("model").joinpath(IRIS_FILE).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    if header != [*IRIS_FEATURES, "species"] or any(len(row) != 5 for row in rows):
        raise ValueError(f"model/{IRIS_FILE} is damaged: expected {IRIS_FEATURES} and species")
    cells = np.array(rows, dtype=str)
    X = cells[:, :4].astype(np.float64)
    labels = tuple(str(name) for name in cells[:, 4])
    X.setflags(write=False)
    return X, labels


def iris_table() -> Table:
    """The 150 Iris flowers: four measurements in cm and the species name."""
    X, labels = iris_arrays()
    return Table(list(IRIS_FEATURES), X.copy(), list(labels))


@dataclass(frozen=True)
class Dataset:
    """Inputs and class indices ready for training. Shapes: X (n, d), y (n,)."""

    X: FloatArray
    y: IntArray
    features: list[str]
    classes: list[str]
    target: str


def _select(table: Table, features: Sequence[str] | None) -> tuple[list[str], FloatArray]:
    if features is None:
        if len(table.feature_names) > MAX_FEATURES:
            raise ValueError(
                f"the table has {len(table.feature_names)} columns; pick at most "
                f"{MAX_FEATURES} with features"
            )
        features = table.feature_names
    features = list(features)
    if not features or len(features) > MAX_FEATURES or len(set(features)) != len(features):
        raise ValueError(f"features must be 1 to {MAX_FEATURES} distinct names, got {features}")
    for name in features:
        if name not in table.feature_names:
            raise ValueError(
                f"unknown feature {name!r}; the data has {', '.join(table.feature_names)} "
                "(features=None uses them all)"
            )
    columns = [table.feature_names.index(name) for name in features]
    return features, table.X[:, columns]


def make_dataset(
    features: Sequence[str] | None, target: str, table: Table | None = None
) -> Dataset:
    """Pick the feature columns and encode the target.

    Iris (table None): `target` is a species (that class against the rest, classes
    [f"not-{target}", target]) or "species" (three classes). A caller's table: its
    labels define the classes, sorted; with two, the first is the negative class.
    """
    if table is None:
        if target == CUSTOM_TARGET:
            raise ValueError("target 'custom' needs a data table of your own")
        if target not in IRIS_TARGETS:
            raise ValueError(
                f"unknown target {target!r}; expected one of {', '.join(IRIS_TARGETS)}"
            )
        table = iris_table()
        names, X = _select(table, features)
        species = np.array(table.labels)
        if target == "species":
            classes = list(IRIS_SPECIES)
            y = np.searchsorted(np.array(classes), species)
        else:
            classes = [f"not-{target}", target]
            y = (species == target).astype(np.int64)
    else:
        names, X = _select(table, features)
        classes = sorted(set(table.labels))
        y = np.searchsorted(np.array(classes), np.array(table.labels))
        target = CUSTOM_TARGET
    return Dataset(X, y.astype(np.int64), names, classes, target)


def stratified_split(
    y: IntArray, test_fraction: float, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Shuffled train and test indices, each class split in the same proportion.

    A class contributes round(n_c * test_fraction) rows to the test set, but always
    keeps at least one row for training.
    """
    train_parts, test_parts = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_test = min(int(round(members.size * test_fraction)), members.size - 1)
        test_parts.append(members[:n_test])
        train_parts.append(members[n_test:])
    train = rng.permutation(np.concatenate(train_parts))
    test = rng.permutation(np.concatenate(test_parts))
    return train.astype(np.int64), test.astype(np.int64)
