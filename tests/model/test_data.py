"""Iris and callers' tables: selection, encoding, and clear errors for bad tables."""

from __future__ import annotations

import numpy as np
import pytest

from model.data import IRIS_FEATURES, Table, iris_table, make_dataset


def test_iris_is_the_bundled_150_flowers() -> None:
    table = iris_table()
    assert table.feature_names == list(IRIS_FEATURES)
    assert table.X.shape == (150, 4)
    assert sorted(set(table.labels)) == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(table.X[0], [5.1, 3.5, 1.4, 0.2])


def test_packaged_iris_equals_scikit_learns_copy_exactly() -> None:
    from sklearn.datasets import load_iris

    reference = load_iris()
    table = iris_table()
    np.testing.assert_array_equal(table.X, reference.data)  # bit for bit, no tolerance
    assert table.labels == [str(reference.target_names[i]) for i in reference.target]
    assert tuple(IRIS_FEATURES) == tuple(
        name.removesuffix(" (cm)").replace(" ", "_") for name in reference.feature_names
    )


def test_binary_iris_target_codes_the_named_class_as_positive() -> None:
    data = make_dataset(("sepal_length", "sepal_width"), "setosa")
    assert data.classes == ["not-setosa", "setosa"]
    assert data.X.shape == (150, 2)
    assert data.y.sum() == 50 and data.y[0] == 1  # the first flower is a setosa
    versicolor = make_dataset(None, "versicolor")
    assert versicolor.classes == ["not-versicolor", "versicolor"]
    assert versicolor.y[50] == 1 and versicolor.y[0] == 0


def test_species_target_has_three_classes() -> None:
    data = make_dataset(None, "species")
    assert data.features == list(IRIS_FEATURES)
    assert np.bincount(data.y).tolist() == [50, 50, 50]


def test_unknown_iris_feature_or_target_is_refused() -> None:
    with pytest.raises(
        ValueError, match="unknown feature 'petal_colour'; the data has sepal_length"
    ):
        make_dataset(("petal_colour",), "setosa")
    with pytest.raises(ValueError, match="unknown target 'rose'"):
        make_dataset(None, "rose")


def test_callers_table_labels_define_sorted_classes() -> None:
    table = Table(["a", "b"], [[0, 1], [1, 0], [2, 2], [3, 1]], ["yes", "no", "yes", "maybe"])
    data = make_dataset(("b",), "ignored", table)
    assert data.classes == ["maybe", "no", "yes"]
    assert data.y.tolist() == [2, 1, 2, 0]
    assert data.X.tolist() == [[1], [0], [2], [1]]
    assert data.target == "custom"


def test_table_accepts_a_numpy_array() -> None:
    table = Table(["a"], np.array([[1], [2]]), ["p", "q"])
    assert table.X.dtype == np.float64


@pytest.mark.parametrize(
    ("names", "rows", "labels", "message"),
    [
        (["a", "b"], [[1, 2], [3]], ["p", "q"], "row 1 has 1 values but there are 2 feature names"),
        (
            ["a"],
            [[1.0], [float("nan")]],
            ["p", "q"],
            r"row 1, column 0: nan is not a finite number",
        ),
        (["a"], [[1.0], [float("inf")]], ["p", "q"], "not a finite number"),
        (["a"], [[1.0], [2.0]], ["p", "p"], r"at least 2 classes, got only \['p'\]"),
        (["a", "a"], [[1, 2], [3, 4]], ["p", "q"], r"distinct; repeated: \['a'\]"),
        (["a"], [[1.0], [2.0]], ["p"], "there are 1 labels for 2 rows"),
        (["a"], [[1.0], ["x"]], ["p", "q"], "rows must hold only numbers"),
        (["a"], [], [], "the table has no rows"),
        ([], [[1.0]], ["p"], "feature_names must be a non-empty list"),
        (["a"], [[1.0], [2.0]], ["p", 3], "label 1 must be a non-empty string"),
        (["", "b"], [[1, 2]], ["p"], "feature names must be non-empty strings"),
    ],
)
def test_bad_tables_are_refused_naming_the_problem(
    names: list, rows: list, labels: list, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Table(names, rows, labels)


def test_selecting_an_unknown_column_of_a_table_is_refused() -> None:
    table = Table(["a", "b"], [[0, 1], [1, 0]], ["p", "q"])
    with pytest.raises(ValueError, match="unknown feature 'c'; the data has a, b"):
        make_dataset(("c",), "setosa", table)
