"""The lecture's worked example ("Backpropagation by Hand"): every figure in API.md.

Arithmetic, with x = [5, 3], W = [[1, -1, 3], [2, 2, -1]], V = [0.1, 0.5, -0.1]:
  z1 = x @ W = [5*1 + 3*2, 5*(-1) + 3*2, 5*3 + 3*(-1)] = [11, 1, 12]
  h = sigmoid(z1) = [0.9999832986, 0.7310585786, 0.9999938558]
  z2 = h @ V = 0.09999833 + 0.36552929 - 0.09999939 = 0.3655282336
  y = sigmoid(z2) = 0.5903780017
  J = -log(y) = 0.5269922664,   dJ/dy = -1 / y = -1.6938300497
  dJ/dz2 = y - 1 = -0.4096219983,   dJ/dV = h * dJ/dz2
  dJ/dh = V * dJ/dz2,   dJ/dz1 = dJ/dh * h (1 - h),   dJ/dW = outer(x, dJ/dz1)
  dJ/dx = W @ dJ/dz1
"""

from __future__ import annotations

import numpy as np
import pytest

from model.network import lecture_network
from model.trace import trace_backprop

REL = 1e-6
HIDDEN_OUTPUT = [0.9999832986, 0.7310585786, 0.9999938558]
OUTPUT = 0.5903780017
LOSS = 0.5269922664
DJ_DY = -1.6938300497
GRAD_V = [[-0.409615157], [-0.2994576758], [-0.4096194815]]
GRAD_W = [
    [-3.4205777663e-06, -2.0134143245e-01, 1.2583868074e-06],
    [-2.0523466598e-06, -1.2080485947e-01, 7.5503208443e-07],
]
GRAD_X = [0.0402683574, -0.0805381929]


@pytest.fixture(scope="module")
def trace() -> dict:
    return trace_backprop(lecture_network(), [5, 3], 1).to_dict()


def test_hidden_layer_output_matches_lecture(trace: dict) -> None:
    hidden = trace["layers"][0]
    assert hidden["name"] == "hidden"
    assert hidden["pre_activation"] == [11.0, 1.0, 12.0]
    np.testing.assert_allclose(hidden["output"], HIDDEN_OUTPUT, rtol=REL)


def test_output_loss_and_loss_gradient_match_lecture(trace: dict) -> None:
    np.testing.assert_allclose(trace["output"], [OUTPUT], rtol=REL)
    np.testing.assert_allclose(trace["layers"][1]["output"], [OUTPUT], rtol=REL)
    assert trace["loss"] == pytest.approx(LOSS, rel=REL)
    assert trace["loss_name"] == "binary_cross_entropy"
    np.testing.assert_allclose(trace["grad_loss_output"], [DJ_DY], rtol=REL)
    np.testing.assert_allclose(trace["layers"][1]["grad_output"], [DJ_DY], rtol=REL)


def test_output_layer_weight_gradient_matches_hand_formula_not_the_printout(trace: dict) -> None:
    # The lecture's printout shows 0 for the last two entries; its own formula gives these.
    np.testing.assert_allclose(trace["layers"][1]["grad_weights"], GRAD_V, rtol=REL)
    assert trace["layers"][1]["grad_weights"][1][0] != 0.0


def test_hidden_layer_weight_gradient_matches_lecture(trace: dict) -> None:
    np.testing.assert_allclose(trace["layers"][0]["grad_weights"], GRAD_W, rtol=REL)


def test_input_gradient_matches_lecture(trace: dict) -> None:
    np.testing.assert_allclose(trace["grad_input"], GRAD_X, rtol=REL)
    # No standardisation for the lecture's weights: raw and network input coincide.
    assert trace["grad_raw_input"] == trace["grad_input"]
    assert trace["input"] == {"raw": [5.0, 3.0], "network_input": [5.0, 3.0]}


def test_intermediate_values_follow_the_chain_rule(trace: dict) -> None:
    hidden, output = trace["layers"]
    y = OUTPUT
    # dJ/dz2 = dJ/dy * y (1 - y) = y - 1 for t = 1.
    np.testing.assert_allclose(output["grad_pre_activation"], [y - 1], rtol=REL)
    np.testing.assert_allclose(output["activation_derivative"], [y * (1 - y)], rtol=REL)
    # dJ/dh_1 = -1.69 * 0.59 * (1 - 0.59) * 0.1 = -0.04096 (the lecture's slide)
    np.testing.assert_allclose(hidden["grad_output"][0], -0.04096219983, rtol=REL)
    h = np.array(HIDDEN_OUTPUT)
    np.testing.assert_allclose(hidden["activation_derivative"], h * (1 - h), rtol=1e-5)


def test_saturated_units_are_the_two_extreme_hidden_units(trace: dict) -> None:
    assert trace["layers"][0]["saturated"] == [0, 2]
    assert trace["layers"][1]["saturated"] == []


def test_gradient_check_passes_on_the_lecture_example(trace: dict) -> None:
    check = trace["gradient_check"]
    assert check["method"] == "central_difference"
    assert check["epsilon"] == 1e-6
    assert check["passed"] is True
    assert check["max_rel_error"] < 1e-6
    assert check["max_abs_error"] < 1e-9


def test_trace_has_exactly_the_contract_fields(trace: dict) -> None:
    assert set(trace) == {
        "input",
        "target",
        "label",
        "layers",
        "output",
        "loss",
        "loss_name",
        "grad_loss_output",
        "grad_input",
        "grad_raw_input",
        "gradient_check",
    }
    assert set(trace["layers"][0]) == {
        "name",
        "activation",
        "weights",
        "bias",
        "pre_activation",
        "output",
        "activation_derivative",
        "grad_output",
        "grad_pre_activation",
        "grad_weights",
        "grad_bias",
        "saturated",
    }
    assert trace["layers"][0]["bias"] is None
    assert trace["layers"][0]["grad_bias"] is None
    assert trace["target"] == [1.0]
    assert trace["label"] == "1"
    # Vectors stay lists even with one element.
    assert isinstance(trace["output"], list)
    assert isinstance(trace["layers"][1]["bias"], type(None))


def test_learning_rate_adds_one_descent_step_without_changing_the_model() -> None:
    net = lecture_network()
    before = net.theta.copy()
    trace = trace_backprop(net, [5, 3], 1, learning_rate=0.1).to_dict()
    output = trace["layers"][1]
    expected = np.array([[0.1], [0.5], [-0.1]]) - 0.1 * np.array(GRAD_V)
    np.testing.assert_allclose(output["weights_after_step"], expected, rtol=REL)
    assert output["bias_after_step"] is None
    np.testing.assert_array_equal(net.theta, before)


def test_network_forward_and_backward_reproduce_the_figures_directly() -> None:
    net = lecture_network()
    X = np.array([[5.0, 3.0]])
    y = net.forward(X)
    np.testing.assert_allclose(net.layers[0].a, [HIDDEN_OUTPUT], rtol=REL)
    np.testing.assert_allclose(y, [[OUTPUT]], rtol=REL)
    # The lecture's own backward: dJ/dy = -1/y, then through sigmoid' = y (1 - y).
    dX = net.backward(-1.0 / y)
    np.testing.assert_allclose(net.layer("output").dW, GRAD_V, rtol=REL)
    np.testing.assert_allclose(net.layer("hidden").dW, GRAD_W, rtol=REL)
    np.testing.assert_allclose(dX, [GRAD_X], rtol=REL)
    np.testing.assert_allclose(net.predict_proba(X), y, rtol=0, atol=0)
