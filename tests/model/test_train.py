"""Training: accuracy floors, reproducibility, stopping rule, progress, configuration."""

from __future__ import annotations

import numpy as np
import pytest

from model.classifier import Classifier
from model.data import Table
from model.train import Progress, TrainConfig, TrainingCancelled, train


def test_default_model_reaches_accuracy_floors(default_model: Classifier) -> None:
    metrics = default_model.metrics
    assert metrics["test_accuracy"] >= 0.95
    assert metrics["train_accuracy"] >= 0.98
    assert default_model.features == ["sepal_length", "sepal_width"]
    assert default_model.classes == ["not-setosa", "setosa"]
    assert default_model.target == "setosa"
    # The trained network keeps no cached training data.
    assert all(layer.x is None and layer.a is None for layer in default_model.network.layers)
    assert [(x.n_in, x.n_out, x.activation) for x in default_model.network.layers] == [
        (2, 3, "sigmoid"),
        (3, 1, "sigmoid"),
    ]


def test_default_model_stops_by_the_lecture_rule_in_well_under_a_second(
    default_model: Classifier,
) -> None:
    metrics = default_model.metrics
    assert metrics["converged"] is True
    assert metrics["epochs"] < TrainConfig().max_epochs
    assert metrics["seconds"] < 1.0


def test_species_with_all_features_reaches_accuracy_floor() -> None:
    # A 30-flower hold-out moves in steps of 0.033; seed 0's split holds three hard
    # versicolor/virginica flowers (0.90), so the floor is on the mean of five seeds.
    accuracies = [
        train(TrainConfig(features=None, target="species", seed=seed)).metrics["test_accuracy"]
        for seed in range(5)
    ]
    assert np.mean(accuracies) >= 0.93
    assert min(accuracies) >= 0.9


def test_species_model_is_softmax_with_one_column_per_class(species_model: Classifier) -> None:
    assert species_model.network.output_activation == "softmax"
    assert species_model.classes == ["setosa", "versicolor", "virginica"]
    proba = species_model.predict_proba(np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 5.6, 2.4]]))
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert species_model.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.1, 5.6, 2.4]]) == [
        "setosa",
        "virginica",
    ]


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "adam"])
def test_same_config_and_seed_give_identical_weights(optimizer: str) -> None:
    config = TrainConfig(optimizer=optimizer, learning_rate=0.05, max_epochs=50, batch_size=16)
    first, second = train(config), train(config)
    np.testing.assert_array_equal(first.network.theta, second.network.theta)
    assert first.manifest()["sha256"] == second.manifest()["sha256"]
    other = train(TrainConfig(**{**config.to_dict(), "seed": 1, "features": config.features}))
    assert not np.array_equal(first.network.theta, other.network.theta)


@pytest.mark.parametrize(("optimizer", "learning_rate"), [("sgd", 0.5), ("adam", 0.05)])
def test_minibatch_optimizers_learn_the_default_task(optimizer: str, learning_rate: float) -> None:
    clf = train(TrainConfig(optimizer=optimizer, learning_rate=learning_rate, max_epochs=200))
    assert clf.metrics["test_accuracy"] >= 0.95


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_other_hidden_activations_train(activation: str) -> None:
    clf = train(TrainConfig(hidden_activation=activation, hidden_units=8, max_epochs=500))
    assert clf.network.layers[0].activation == activation
    assert clf.metrics["train_accuracy"] >= 0.98


def test_stopping_rule_is_the_parameter_step_norm() -> None:
    loose = train(TrainConfig(tolerance=1e-2, max_epochs=5000))
    tight = train(TrainConfig(tolerance=1e-3, max_epochs=5000))
    assert loose.metrics["converged"] and tight.metrics["converged"]
    assert loose.metrics["epochs"] < tight.metrics["epochs"]
    never = train(TrainConfig(tolerance=0.0, max_epochs=300))
    assert never.metrics == {**never.metrics, "converged": False, "epochs": 300}


def test_history_has_at_most_200_points_and_ends_at_the_last_epoch() -> None:
    clf = train(TrainConfig(max_epochs=1000, tolerance=0.0))
    history = clf.history
    assert 100 <= len(history) <= 200
    assert history[-1]["epoch"] == 1000
    assert [p["epoch"] for p in history] == sorted({p["epoch"] for p in history})
    assert set(history[0]) == {"epoch", "loss", "train_accuracy"}
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["loss"] == pytest.approx(clf.metrics["train_loss"])


def test_progress_is_reported_and_includes_the_final_epoch() -> None:
    seen: list[Progress] = []
    train(TrainConfig(max_epochs=400, tolerance=0.0), progress=seen.append)
    assert seen[-1].epoch == 400
    assert all(p.max_epochs == 400 for p in seen)
    assert [p.epoch for p in seen] == sorted({p.epoch for p in seen})
    assert 0 <= seen[-1].train_accuracy <= 1 and seen[-1].loss > 0


def test_progress_returning_false_cancels() -> None:
    calls = []

    def stop_at_second_call(p: Progress) -> bool:
        calls.append(p.epoch)
        return len(calls) < 2

    with pytest.raises(TrainingCancelled):
        train(TrainConfig(max_epochs=5000, tolerance=0.0), progress=stop_at_second_call)
    assert len(calls) == 2


def test_test_fraction_zero_gives_null_test_metrics() -> None:
    clf = train(TrainConfig(test_fraction=0.0, max_epochs=100))
    assert clf.metrics["test_accuracy"] is None and clf.metrics["test_loss"] is None
    assert clf.metrics["train_accuracy"] is not None


def test_metrics_have_the_contract_fields(default_model: Classifier) -> None:
    assert set(default_model.metrics) == {
        "train_accuracy",
        "test_accuracy",
        "train_loss",
        "test_loss",
        "epochs",
        "converged",
        "seconds",
    }


def test_standardisation_statistics_come_from_training_rows(default_model: Classifier) -> None:
    assert default_model.mean is not None and default_model.std is not None
    # Sepal length and width of Iris: means near 5.84 and 3.06 cm.
    np.testing.assert_allclose(default_model.mean, [5.84, 3.06], atol=0.15)
    raw = train(TrainConfig(standardize=False, max_epochs=50))
    assert raw.mean is None and raw.std is None


def test_diverging_weights_raise_a_clear_error() -> None:
    # Raw inputs near the float64 limit: the first gradient step overflows to infinity.
    big = 1.5e308
    rows = [[big, -big], [-big, big], [big, big], [-big, -big]]
    table = Table(["a", "b"], rows, ["p", "q", "q", "p"])
    config = TrainConfig(
        features=None, standardize=False, hidden_units=0, learning_rate=10, test_fraction=0.0
    )
    with pytest.raises(ValueError, match="training diverged at epoch 1 .* lower the learning_rate"):
        train(config, data=table)


def test_overflowing_loss_is_a_clear_error_not_nan_metrics() -> None:
    # Finite but huge weights times huge inputs overflow z; the loss cannot be computed.
    big = 1e200
    rows = [[big, -big], [-big, big], [big / 2, big], [-big, -big / 2]]
    table = Table(["a", "b"], rows, ["p", "q", "q", "p"])
    config = TrainConfig(
        features=None, standardize=False, hidden_units=0, learning_rate=10, test_fraction=0.0
    )
    with pytest.raises(ValueError, match="the loss overflowed .* standardize the inputs"):
        train(config, data=table)


def test_values_too_large_to_standardize_are_a_clear_error() -> None:
    table = Table(["a"], [[1e200], [-1e200], [3e200], [-2e200]], ["p", "q", "p", "q"])
    with pytest.raises(ValueError, match="too large to standardize"):
        train(TrainConfig(features=None, test_fraction=0.0), data=table)


def test_trains_on_a_callers_binary_table() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(-2, 1, (60, 3)), rng.normal(2, 1, (60, 3))])
    labels = ["spam"] * 60 + ["ham"] * 60
    table = Table(["a", "b", "c"], X.tolist(), labels)
    clf = train(TrainConfig(features=None, max_epochs=300), data=table)
    assert clf.classes == ["ham", "spam"]  # sorted; the first is the negative class
    assert clf.target == "custom" and clf.training["target"] == "custom"
    assert clf.features == ["a", "b", "c"]
    # The recorded config trains the same model again from the same table.
    again = train(TrainConfig.from_dict(clf.training), data=table)
    np.testing.assert_array_equal(again.network.theta, clf.network.theta)
    with pytest.raises(ValueError, match="target 'custom' needs a data table"):
        train(TrainConfig.from_dict(clf.training))
    assert clf.metrics["test_accuracy"] >= 0.95
    assert clf.predict([[-2, -2, -2]]) == ["spam"]


def test_trains_on_a_callers_table_with_selected_columns_and_three_labels() -> None:
    rng = np.random.default_rng(1)
    centres = {"x": (-3, 0), "y": (3, 0), "z": (0, 4)}
    rows, labels = [], []
    for label, (cx, cy) in centres.items():
        for _ in range(40):
            rows.append([cx + rng.normal(), rng.normal(), cy + rng.normal()])
            labels.append(label)
    table = Table(["u", "noise", "v"], rows, labels)
    clf = train(TrainConfig(features=("u", "v"), max_epochs=1000), data=table)
    assert clf.network.output_activation == "softmax"
    assert clf.features == ["u", "v"]
    assert clf.metrics["test_accuracy"] >= 0.9


def test_default_features_missing_from_a_table_is_a_clear_error() -> None:
    table = Table(["a"], [[0.0], [1.0]], ["p", "q"])
    with pytest.raises(ValueError, match="unknown feature 'sepal_length'.*features=None"):
        train(TrainConfig(), data=table)


def test_stratified_split_keeps_class_proportions() -> None:
    clf = train(TrainConfig(target="species", features=None, max_epochs=1, test_fraction=0.2))
    assert clf.metrics["epochs"] == 1
    from model.data import make_dataset, stratified_split

    data = make_dataset(None, "species")
    train_idx, test_idx = stratified_split(data.y, 0.2, np.random.default_rng(0))
    assert np.bincount(data.y[test_idx]).tolist() == [10, 10, 10]
    assert np.bincount(data.y[train_idx]).tolist() == [40, 40, 40]
    assert len(set(train_idx) | set(test_idx)) == 150
