"""The served unit: probabilities in class order, predictions, consistency checks."""

from __future__ import annotations

import numpy as np
import pytest

from model.classifier import Classifier
from model.network import Network, lecture_network


def test_binary_columns_are_negative_then_positive(default_model: Classifier) -> None:
    X = np.array([[5.0, 3.6], [6.5, 2.8]])
    proba = default_model.predict_proba(X)
    p_setosa = default_model.network.predict_proba(default_model.network_input(X))[:, 0]
    np.testing.assert_array_equal(proba[:, 1], p_setosa)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert default_model.predict(X) == ["setosa", "not-setosa"]


def test_one_row_and_plain_lists_are_accepted(default_model: Classifier) -> None:
    assert default_model.predict_proba([5.0, 3.6]).shape == (1, 2)
    assert default_model.predict([[5.0, 3.6]]) == ["setosa"]


def test_without_standardisation_inputs_go_straight_in() -> None:
    clf = Classifier(lecture_network(), ["a", "b"], ["no", "yes"], "custom")
    np.testing.assert_allclose(clf.predict_proba([[5.0, 3.0]]), [[1 - 0.5903780017, 0.5903780017]])
    assert clf.predict([[5.0, 3.0]]) == ["yes"]
    assert clf.created_at.endswith("Z")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": ["a"]}, "1 feature names for a network of 2 inputs"),
        ({"classes": ["a", "b", "c"]}, "a sigmoid output needs 1 unit and exactly 2 classes"),
        ({"classes": ["a", "a"]}, "classes must be at least 2 distinct names"),
        ({"mean": np.zeros(2)}, "mean and std must both be given"),
        ({"mean": np.zeros(2), "std": np.zeros(2)}, "std must be positive"),
        ({"mean": np.zeros(3), "std": np.ones(3)}, r"mean and std must have shape \(2,\)"),
    ],
)
def test_inconsistent_parts_are_refused(kwargs: dict, message: str) -> None:
    values = {"features": ["a", "b"], "classes": ["no", "yes"], "target": "custom", **kwargs}
    with pytest.raises(ValueError, match=message):
        Classifier(lecture_network(), **values)


def test_softmax_needs_one_output_per_class() -> None:
    net = Network.from_spec([{"weights": [[1.0, 2.0, 3.0]], "activation": "softmax"}])
    with pytest.raises(ValueError, match="softmax output of 3 units for 2 classes"):
        Classifier(net, ["a"], ["x", "y"], "custom")
