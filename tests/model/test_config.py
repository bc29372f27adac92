"""TrainConfig validation and JSON round trips."""

from __future__ import annotations

import json

import pytest

from model.config import TrainConfig


def test_defaults_are_the_lecture_model() -> None:
    config = TrainConfig()
    assert config.features == ("sepal_length", "sepal_width")
    assert config.target == "setosa"
    assert config.hidden_units == 3
    assert config.hidden_activation == "sigmoid"
    assert config.optimizer == "gd"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden_units", 65, "hidden_units must be between 0 and 64, got 65"),
        ("hidden_units", -1, "hidden_units must be between 0 and 64, got -1"),
        ("hidden_units", 2.5, "hidden_units must be an integer"),
        ("hidden_units", True, "hidden_units must be an integer"),
        ("hidden_activation", "softmax", "hidden_activation must be one of"),
        ("optimizer", "newton", "optimizer must be one of gd, sgd, adam, lbfgs"),
        ("learning_rate", 0, "learning_rate must be > 0 and <= 10.0, got 0"),
        ("learning_rate", 10.5, "learning_rate must be > 0 and <= 10.0, got 10.5"),
        ("learning_rate", float("nan"), "learning_rate must be finite"),
        ("batch_size", 0, "batch_size must be between 1"),
        ("max_epochs", 0, "max_epochs must be between 1 and 100000, got 0"),
        ("max_epochs", 100_001, "max_epochs must be between 1 and 100000"),
        ("tolerance", -1e-3, "tolerance must be >= 0"),
        ("tolerance", float("inf"), "tolerance must be finite"),
        ("test_fraction", 0.6, "test_fraction must be between 0 and 0.5, got 0.6"),
        ("test_fraction", -0.1, "test_fraction must be between 0 and 0.5"),
        ("seed", -1, "seed must be between 0"),
        (
            "target",
            "rose",
            "target must be one of setosa, versicolor, virginica, species, custom",
        ),
        ("standardize", "yes", "standardize must be true or false"),
        ("features", (), "features must name between 1 and 64 columns, got 0"),
        ("features", ("a", "a"), "features must be distinct"),
        ("features", "sepal_length", "features must be a list of names"),
    ],
)
def test_out_of_bounds_values_are_refused_with_the_value(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        TrainConfig(**{field: value})


def test_bounds_are_inclusive() -> None:
    TrainConfig(hidden_units=0, learning_rate=10, max_epochs=100_000, test_fraction=0.5)
    TrainConfig(hidden_units=64, max_epochs=1, tolerance=0, test_fraction=0)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown training option.*epochs"):
        TrainConfig.from_dict({"epochs": 10})


def test_dict_round_trip_is_json_ready() -> None:
    config = TrainConfig(features=["petal_length"], optimizer="adam", learning_rate=1, seed=7)
    values = json.loads(json.dumps(config.to_dict()))
    assert values["features"] == ["petal_length"]
    assert values["learning_rate"] == 1.0 and isinstance(values["learning_rate"], float)
    assert TrainConfig.from_dict(values) == config
    assert TrainConfig.from_dict({"features": None}).features is None
