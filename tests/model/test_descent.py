"""Gradient descent on one sample (the lecture's last cell): loss falls, output moves."""

from __future__ import annotations

import numpy as np
import pytest

from model.classifier import Classifier
from model.descent import MAX_STEPS, descend_one_sample
from model.network import LECTURE_W, Network, lecture_network
from model.trace import trace_backprop


@pytest.mark.parametrize(("label", "towards"), [(1, 1.0), (0, 0.0)])
def test_the_lecture_sample_loss_falls_and_the_output_moves_to_the_label(
    label: int, towards: float
) -> None:
    descent = descend_one_sample(lecture_network(), [5.0, 3.0], label, 100, 0.1)
    loss = np.array(descent.loss)
    output = np.array(descent.output)[:, 0]
    assert loss.shape == (101,) and output.shape == (101,)
    assert np.all(np.diff(loss) < 0), "every step lowers the loss"
    assert loss[-1] < 0.06 < loss[0]
    assert abs(output[-1] - towards) < 0.06
    assert np.all(np.diff(np.abs(output - towards)) < 0)


def test_index_zero_is_the_trace_and_index_one_is_one_step() -> None:
    net = lecture_network()
    descent = descend_one_sample(net, [5.0, 3.0], 1, 1, 0.1)
    trace = trace_backprop(net, [5.0, 3.0], 1, learning_rate=0.1).to_dict()
    assert descent.loss[0] == pytest.approx(0.5269922664, rel=1e-9)
    assert descent.loss[0] == pytest.approx(trace["loss"], rel=1e-12)
    assert descent.output[0] == pytest.approx(trace["output"], rel=1e-12)
    stepped = Network.from_spec(
        [
            {"weights": layer["weights_after_step"], "bias": None, "activation": "sigmoid"}
            for layer in trace["layers"]
        ]
    )
    after = stepped.predict_proba(np.array([[5.0, 3.0]]))[0]
    assert descent.output[1] == pytest.approx(after.tolist(), rel=1e-12)
    assert descent.loss[1] == pytest.approx(-np.log(after[0]), rel=1e-9)


def test_the_network_is_not_modified() -> None:
    net = lecture_network()
    descend_one_sample(net, [5.0, 3.0], 0, 50, 1.0)
    assert net.layers[0].W.tolist() == LECTURE_W


def test_zero_steps_is_the_initial_point_only() -> None:
    descent = descend_one_sample(lecture_network(), [5.0, 3.0], 1, 0, 0.1)
    assert len(descent.loss) == len(descent.output) == 1
    assert descent.to_dict()["steps"] == 0


def test_a_softmax_classifier_descends_in_raw_units(species_model: Classifier) -> None:
    descent = descend_one_sample(species_model, [6.3, 3.3, 6.0, 2.5], "setosa", 30, 0.5)
    assert len(descent.output[0]) == 3
    assert descent.loss[-1] < descent.loss[0]
    assert descent.output[-1][0] > descent.output[0][0]  # P(setosa) rises


@pytest.mark.parametrize(
    ("steps", "rate", "message"),
    [
        (-1, 0.1, "steps"),
        (MAX_STEPS + 1, 0.1, "steps"),
        (True, 0.1, "steps"),
        (10, 0.0, "learning_rate"),
        (10, 10.5, "learning_rate"),
        (10, float("nan"), "learning_rate"),
    ],
)
def test_bad_steps_or_learning_rate_are_refused(steps: int, rate: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        descend_one_sample(lecture_network(), [5.0, 3.0], 1, steps, rate)


def test_a_bad_sample_or_label_is_refused() -> None:
    with pytest.raises(ValueError, match="x must have 2 values"):
        descend_one_sample(lecture_network(), [5.0], 1, 5, 0.1)
    with pytest.raises(ValueError, match="label"):
        descend_one_sample(lecture_network(), [5.0, 3.0], 2, 5, 0.1)
