"""Shared fixtures: models trained once per test session."""

from __future__ import annotations

import pytest

from model.classifier import Classifier
from model.train import TrainConfig, train


@pytest.fixture(scope="session")
def default_model() -> Classifier:
    """The lecture's default model (sepal length and width, setosa vs rest, seed 0)."""
    return train(TrainConfig())


@pytest.fixture(scope="session")
def species_model() -> Classifier:
    """A three-class softmax model on all four features."""
    return train(TrainConfig(features=None, target="species", hidden_units=4, max_epochs=2000))
