"""The Iris table shipped as package data is scikit-learn's, value for value."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_iris

from model.iris import IRIS_FEATURES, iris


def test_the_package_table_equals_scikit_learns() -> None:
    reference = load_iris()
    table = iris()
    np.testing.assert_array_equal(table.X, reference.data)
    assert table.species == tuple(str(reference.target_names[t]) for t in reference.target)
    assert not table.X.flags.writeable


def test_columns_by_name() -> None:
    assert iris().column("petal_width").max() == 2.5
    assert [iris().column(name).min() for name in IRIS_FEATURES] == [4.3, 2.0, 1.0, 0.1]
