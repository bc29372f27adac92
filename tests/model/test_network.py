"""The network: shapes, parameters by name, from_spec validation, extreme inputs."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from model.layers import Dense
from model.network import Network, layer_names, lecture_network
from model.spec import MAX_PARAMETERS


def _spec() -> list[dict[str, Any]]:
    return [
        {"weights": [[1, -1, 3], [2, 2, -1]], "bias": [0.1, 0.0, -0.1], "activation": "tanh"},
        {"weights": [[0.1], [0.5], [-0.1]], "bias": None, "activation": "sigmoid"},
    ]


def test_layer_names_follow_depth() -> None:
    assert layer_names(1) == ["output"]
    assert layer_names(2) == ["hidden", "output"]
    assert layer_names(4) == ["hidden1", "hidden2", "hidden3", "output"]


def test_parameters_and_gradients_by_layer_name() -> None:
    net = Network.from_spec(_spec())
    assert list(net.parameters()) == ["hidden.W", "hidden.b", "output.W"]
    assert list(net.gradients()) == ["hidden.W", "hidden.b", "output.W"]
    assert net.theta.size == 6 + 3 + 3
    # Parameters are views into theta: changing one changes the other.
    net.layer("output").W[0, 0] = 7.0
    assert net.theta[9] == 7.0
    assert repr(net) == "Network(2 -> 3 tanh -> 1 sigmoid; 12 parameters)"


def test_spec_round_trip() -> None:
    net = Network.from_spec(_spec())
    again = Network.from_spec(net.to_spec())
    np.testing.assert_array_equal(again.theta, net.theta)
    assert net.to_spec()[0]["bias"] == [0.1, 0.0, -0.1]
    assert net.to_spec()[1]["bias"] is None


def test_predict_proba_equals_forward_and_keeps_no_cache() -> None:
    net = Network.from_spec(_spec())
    X = np.array([[5.0, 3.0], [0.0, 0.0], [-1.0, 2.0]])
    p = net.predict_proba(X)
    assert net.layers[0].x is None  # nothing cached
    np.testing.assert_array_equal(p, net.forward(X))
    assert net.predict_proba(X[:1]).shape == (1, 1)


def test_backward_matches_backward_delta_for_sigmoid_and_softmax() -> None:
    rng = np.random.default_rng(0)
    for output, k in (("sigmoid", 1), ("softmax", 3)):
        net = Network.initialize(
            4, [5, 3], k, hidden_activation="tanh", output_activation=output, rng=rng
        )
        X = rng.normal(size=(6, 4))
        T = np.eye(3)[rng.integers(0, 3, 6)] if k == 3 else rng.integers(0, 2, (6, 1)) * 1.0
        a = net.forward(X)
        dX1 = net.backward(net.loss.grad_output(net.layers[-1].z, T))
        g1 = net.grad.copy()
        dX2 = net.backward_delta(net.loss.delta(a, T))
        np.testing.assert_allclose(net.grad, g1, rtol=1e-10, atol=1e-15)
        np.testing.assert_allclose(dX1, dX2, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_parameter_gradients_equal_the_full_backward(depth: int) -> None:
    rng = np.random.default_rng(depth)
    net = Network.initialize(
        3, [4] * (depth - 1), 1, hidden_activation="relu", output_activation="sigmoid", rng=rng
    )
    X, T = rng.normal(size=(5, 3)), rng.integers(0, 2, (5, 1)).astype(float)
    delta = net.loss.delta(net.forward(X), T)
    net.backward_delta(delta)
    full = net.grad.copy()
    net.grad[:] = np.nan
    net.parameter_gradients(delta)
    np.testing.assert_array_equal(net.grad, full)


def test_copy_is_independent() -> None:
    net = lecture_network()
    twin = net.copy()
    twin.theta[0] = 42.0
    assert net.theta[0] == 1.0


def test_huge_inputs_give_finite_outputs_and_loss_without_warnings() -> None:
    rng = np.random.default_rng(1)
    X = np.array([[1e6, -1e6], [-1e6, 1e6], [1e6, 1e6]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for output, k in (("sigmoid", 1), ("softmax", 3)):
            for hidden in ("sigmoid", "tanh", "relu", "step"):
                net = Network.initialize(
                    2, [4], k, hidden_activation=hidden, output_activation=output, rng=rng
                )
                a = net.forward(X)
                T = np.eye(k)[[0, 1, 2]] if k == 3 else np.array([[1.0], [0.0], [1.0]])
                loss = net.loss.value(net.layers[-1].z, T)
                dX = net.backward_delta(net.loss.delta(a, T))
                assert np.all(np.isfinite(a)) and np.isfinite(loss)
                assert np.all(np.isfinite(net.grad)) and np.all(np.isfinite(dX))
                assert np.all(np.isfinite(net.loss.grad_output(net.layers[-1].z, T)))


def test_constructor_checks_chained_shapes() -> None:
    with pytest.raises(ValueError, match="layer 1 .* takes 2 inputs but layer 0 .* has 3 outputs"):
        Network([Dense("a", np.ones((2, 3)), None), Dense("b", np.ones((2, 1)), None)])
    with pytest.raises(ValueError, match="softmax is only allowed last"):
        Network([Dense("a", np.ones((2, 3)), None, "softmax"), Dense("b", np.ones((3, 1)), None)])
    with pytest.raises(ValueError, match="b must have shape"):
        Dense("a", np.ones((2, 3)), np.ones(2))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s[1].update(weights=[[0.1], [0.5]]),
            "layer 1: weights have 2 rows but layer 0 has 3",
        ),
        (lambda s: s[0].update(activation="swish"), "layer 0: unknown activation 'swish'"),
        (
            lambda s: s[0].update(activation="softmax"),
            "layer 0: softmax is only allowed in the last",
        ),
        (lambda s: s[1].update(activation="tanh"), "layer 1: the last layer's activation must be"),
        (lambda s: s[1].update(activation="step"), "layer 1: the last layer's activation must be"),
        (lambda s: s[1].update(activation="softmax"), "layer 1: a softmax output layer needs >= 2"),
        (
            lambda s: s[1].update(weights=[[1, 2]] * 3, bias=None),
            "layer 1: a sigmoid output layer must have 1 unit",
        ),
        (
            lambda s: s[0]["weights"].__setitem__(0, [1, float("nan"), 3]),
            "layer 0: weights must be finite",
        ),
        (lambda s: s[0]["weights"].__setitem__(0, [1, 2]), "layer 0: weights rows have different"),
        (
            lambda s: s[0]["weights"].__setitem__(0, [1, "2", 3]),
            "layer 0: weights row 0 must hold only",
        ),
        (
            lambda s: s[0]["weights"].__setitem__(0, [1, True, 3]),
            "layer 0: weights row 0 must hold only",
        ),
        (lambda s: s[0].update(weights=[]), "layer 0: weights must be a non-empty list"),
        (
            lambda s: s[0].update(bias=[1.0, 2.0]),
            "layer 0: bias has 2 values but the weights have 3",
        ),
        (lambda s: s[0].update(bias=[1.0, float("inf"), 0.0]), "layer 0: bias must be finite"),
        (lambda s: s[0].update(bias="zero"), "layer 0: bias must be a list"),
        (lambda s: s[0].update(extra=1), r"layer 0: unknown keys \['extra'\]"),
        (lambda s: s[1].pop("weights"), "layer 1: missing 'weights'"),
        (lambda s: s[1].pop("activation"), "layer 1: missing 'activation'"),
    ],
)
def test_from_spec_names_the_layer_and_the_rule(change: Any, message: str) -> None:
    spec = _spec()
    change(spec)
    with pytest.raises(ValueError, match=message):
        Network.from_spec(spec)


def test_from_spec_refuses_empty_and_oversized_networks() -> None:
    with pytest.raises(ValueError, match="non-empty list of layers"):
        Network.from_spec([])
    huge = [{"weights": np.zeros((200, 60)).tolist(), "activation": "relu"}]
    huge.append({"weights": np.zeros((60, 2)).tolist(), "activation": "softmax"})
    with pytest.raises(ValueError, match=f"layer 0: the network exceeds {MAX_PARAMETERS}"):
        Network.from_spec(huge)


def test_from_spec_accepts_a_bias_free_single_neuron() -> None:
    net = Network.from_spec([{"weights": [[0.5], [-0.5]], "activation": "sigmoid"}])
    assert [layer.name for layer in net.layers] == ["output"]
    np.testing.assert_allclose(net.predict_proba(np.array([[2.0, 2.0]])), [[0.5]])
