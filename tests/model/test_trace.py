"""The backprop trace beyond the lecture's example: softmax, classifiers, labels, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.classifier import Classifier
from model.network import Network, lecture_network
from model.trace import trace_backprop

SOFTMAX_SPEC = [
    {"weights": [[0.2, -0.4], [0.7, 0.1]], "bias": [0.0, 0.1], "activation": "relu"},
    {
        "weights": [[1.0, -1.0, 0.5], [0.3, 0.2, -0.6]],
        "bias": [0.1, 0.0, -0.1],
        "activation": "softmax",
    },
]


def test_softmax_trace_reports_p_minus_t_and_no_elementwise_derivative() -> None:
    net = Network.from_spec(SOFTMAX_SPEC)
    trace = trace_backprop(net, [1.5, -0.5], 2).to_dict()
    output = trace["layers"][-1]
    p = np.array(output["output"])
    assert trace["loss_name"] == "categorical_cross_entropy"
    assert trace["target"] == [0.0, 0.0, 1.0]
    assert output["activation_derivative"] is None
    np.testing.assert_allclose(output["grad_pre_activation"], p - [0, 0, 1], rtol=1e-12)
    np.testing.assert_allclose(output["grad_output"], [0, 0, -1 / p[2]], rtol=1e-12)
    assert trace["loss"] == pytest.approx(-np.log(p[2]), rel=1e-12)
    assert trace["gradient_check"]["passed"] is True
    assert trace["layers"][0]["bias"] == [0.0, 0.1]
    assert len(trace["layers"][0]["grad_bias"]) == 2


def test_classifier_trace_standardises_and_chains_to_the_raw_input(
    default_model: Classifier,
) -> None:
    x = [5.0, 3.0]
    trace = trace_backprop(default_model, x, "setosa").to_dict()
    assert default_model.mean is not None and default_model.std is not None
    expected_input = (np.array(x) - default_model.mean) / default_model.std
    np.testing.assert_allclose(trace["input"]["network_input"], expected_input, rtol=1e-15)
    assert trace["target"] == [1.0] and trace["label"] == "setosa"
    # dJ/d(raw x) by central differences on the classifier itself, J = -log P(setosa).
    eps = 1e-6

    def loss(raw: np.ndarray) -> float:
        return float(-np.log(default_model.predict_proba(raw[None, :])[0, 1]))

    numeric = [
        (loss(np.array(x) + eps * e) - loss(np.array(x) - eps * e)) / (2 * eps) for e in np.eye(2)
    ]
    np.testing.assert_allclose(trace["grad_raw_input"], numeric, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(
        trace["grad_raw_input"], np.array(trace["grad_input"]) / default_model.std, rtol=1e-15
    )
    assert trace["gradient_check"]["passed"] is True


def test_trace_leaves_the_model_untouched(default_model: Classifier) -> None:
    before = default_model.network.theta.copy()
    trace_backprop(default_model, [6.0, 2.2], 0, learning_rate=0.5)
    np.testing.assert_array_equal(default_model.network.theta, before)
    assert all(layer.a is None for layer in default_model.network.layers)


@pytest.mark.parametrize(
    ("label", "target"),
    [(1, 1.0), (0, 0.0), ("1", 1.0), ("0", 0.0), (1.0, 1.0), ("setosa", 1.0), ("not-setosa", 0.0)],
)
def test_binary_labels_accept_numbers_and_class_names(
    default_model: Classifier, label: object, target: float
) -> None:
    trace = trace_backprop(default_model, [5.0, 3.0], label)  # type: ignore[arg-type]
    assert trace.to_dict()["target"] == [target]


@pytest.mark.parametrize(
    "label",
    [2, -1, 0.5, "rose", True, None, float("nan"), 10**309, "9" * 309, "9" * 5000]
    + [pytest.param(-(10**5000), id="an int past str()'s 4,300 digits")],
)
def test_bad_labels_are_refused_with_the_choices(default_model: Classifier, label: object) -> None:
    # Integers past float64 (10**309) or past str()'s 4,300 digits are refused alike.
    with pytest.raises(ValueError, match="label must be 0/1 or one of 'not-setosa', 'setosa'") as e:
        trace_backprop(default_model, [5.0, 3.0], label)  # type: ignore[arg-type]
    assert len(str(e.value)) < 200  # a long label is quoted cut short


def test_species_labels_by_index_or_name(species_model: Classifier) -> None:
    by_name = trace_backprop(species_model, [6.3, 3.3, 6.0, 2.5], "virginica").to_dict()
    by_index = trace_backprop(species_model, [6.3, 3.3, 6.0, 2.5], 2).to_dict()
    assert by_name["target"] == by_index["target"] == [0.0, 0.0, 1.0]
    assert by_name["label"] == "virginica"
    with pytest.raises(ValueError, match="label must be 0 to 2 or one of 'setosa'"):
        trace_backprop(species_model, [6.3, 3.3, 6.0, 2.5], 3)


def test_wrong_length_x_names_the_expected_features(default_model: Classifier) -> None:
    with pytest.raises(
        ValueError, match=r"x must have 2 values \(sepal_length, sepal_width\), got 3"
    ):
        trace_backprop(default_model, [5.0, 3.0, 1.0], 1)
    with pytest.raises(ValueError, match=r"x must have 2 values \(x1, x2\), got 1"):
        trace_backprop(lecture_network(), [5.0], 1)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "5", True])
def test_non_numeric_or_non_finite_x_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="x value for x2 must be a finite number"):
        trace_backprop(lecture_network(), [5.0, bad], 1)  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0"),
        ({"epsilon": 0.0}, "epsilon must be > 0"),
        ({"epsilon": 1.0}, "epsilon must be > 0 and <= 0.01"),
    ],
)
def test_bad_step_or_epsilon_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        trace_backprop(lecture_network(), [5.0, 3.0], 1, **kwargs)


def test_huge_inputs_give_a_finite_json_trace(default_model: Classifier) -> None:
    for x in ([1e6, -1e6], [-1e6, 1e6]):
        for label in (0, 1):
            trace = trace_backprop(default_model, x, label, learning_rate=0.1).to_dict()
            json.dumps(trace, allow_nan=False)  # raises on NaN or infinity
            assert trace["loss"] >= 0


def test_inputs_that_overflow_standardisation_are_refused_without_a_warning(
    default_model: Classifier,
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's RuntimeWarning would go to stderr
        with pytest.raises(ValueError, match="overflow float64"):
            trace_backprop(default_model, [1.7e308, -1.7e308], 1)


def test_overflowing_values_are_a_value_error() -> None:
    net = Network.from_spec(
        [
            {"weights": [[1e300, -1e300]], "activation": "identity"},
            {"weights": [[1e300], [1e300]], "activation": "sigmoid"},
        ]
    )
    with pytest.raises(ValueError, match="overflow float64"):
        trace_backprop(net, [1e300], 1)


def test_trace_dataclasses_are_frozen() -> None:
    trace = trace_backprop(lecture_network(), [5, 3], 1)
    with pytest.raises(AttributeError):
        trace.loss = 0.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        trace.layers[0].name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("label", [0, 1])
def test_a_saturated_output_keeps_the_chain_rule_in_the_trace(label: int) -> None:
    # y = sigma(30) is 1 - 9.4e-14: dJ/dy for t = 0 is 1 + e^30, and dJ/dy * dy/dz = y - t.
    net = Network.from_spec([{"weights": [[30.0]], "bias": None, "activation": "sigmoid"}])
    trace = trace_backprop(net, [1.0], label).to_dict()
    out = trace["layers"][-1]
    expected = -(1 + np.exp(-30.0)) if label else 1 + np.exp(30.0)
    assert trace["grad_loss_output"] == pytest.approx([expected], rel=1e-12)
    assert out["grad_output"] == trace["grad_loss_output"]
    through = np.array(out["grad_output"]) * np.array(out["activation_derivative"])
    np.testing.assert_allclose(through, out["grad_pre_activation"], rtol=1e-3)
