"""GET/POST /backprop: the lecture's figures through HTTP, the model's trace, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from .server import Server

REFERENCE = {
    "hidden_output": [0.9999832986, 0.7310585786, 0.9999938558],
    "output": 0.5903780017,
    "loss": 0.5269922664,
    "dJ_dy": -1.6938300497,
    "grad_V": [[-0.409615157], [-0.2994576758], [-0.4096194815]],
    "grad_W": [
        [-3.4205777663e-06, -2.0134143245e-01, 1.2583868074e-06],
        [-2.0523466598e-06, -1.2080485947e-01, 7.5503208443e-07],
    ],
    "grad_x": [0.0402683574, -0.0805381929],
}


def close(actual: object, expected: object) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-6, atol=0)


def test_lecture_trace_reproduces_every_reference_figure(server: Server) -> None:
    response = server.get("/backprop?weights=lecture&x=5&x=3&label=1")
    assert response.status_code == 200
    trace = response.json()
    assert trace["model_version"] == "lecture"
    hidden, output = trace["layers"]
    close(hidden["output"], REFERENCE["hidden_output"])
    close(output["output"], [REFERENCE["output"]])
    close(trace["output"], [REFERENCE["output"]])
    close(trace["loss"], REFERENCE["loss"])
    close(trace["grad_loss_output"], [REFERENCE["dJ_dy"]])
    close(output["grad_weights"], REFERENCE["grad_V"])
    close(hidden["grad_weights"], REFERENCE["grad_W"])
    close(trace["grad_input"], REFERENCE["grad_x"])
    assert hidden["bias"] is None and hidden["grad_bias"] is None
    assert hidden["weights"] == [[1, -1, 3], [2, 2, -1]]
    assert trace["gradient_check"]["method"] == "central_difference"
    assert trace["gradient_check"]["passed"] is True
    assert hidden["saturated"] == [0, 2]
    for field in (
        "pre_activation",
        "activation_derivative",
        "grad_output",
        "grad_pre_activation",
        "name",
        "activation",
    ):
        assert field in hidden


def test_learning_rate_shows_one_step_without_changing_anything(server: Server) -> None:
    before = server.get("/model").json()
    trace = server.get("/backprop?weights=lecture&x=5&x=3&label=1&learning_rate=0.1").json()
    output = trace["layers"][1]
    close(
        output["weights_after_step"],
        [[0.1 + 0.1 * 0.409615157], [0.5 + 0.1 * 0.2994576758], [-0.1 + 0.1 * 0.4096194815]],
    )
    assert server.get("/model").json() == before


def test_active_model_trace_by_position_and_by_name(server: Server) -> None:
    version = server.get("/model").json()["version"]
    by_position = server.get("/backprop", params={"x": [5.0, 3.0], "label": "setosa"})
    assert by_position.status_code == 200, by_position.text
    trace = by_position.json()
    assert trace["model_version"] == version
    assert trace["input"]["raw"] == [5.0, 3.0]
    assert trace["input"]["network_input"] != [5.0, 3.0]  # standardised
    assert trace["target"] == [1.0]
    assert "grad_raw_input" in trace
    by_name = server.get(
        "/backprop", params={"sepal_length": 5.0, "sepal_width": 3.0, "label": "1"}
    ).json()
    close(by_name["loss"], trace["loss"])
    with_version = server.get("/backprop", params={"x": [5.0, 3.0], "label": 0, "version": version})
    assert with_version.status_code == 200


def test_dot_format_is_graphviz(server: Server) -> None:
    response = server.get("/backprop?weights=lecture&x=5&x=3&label=1&format=dot")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/vnd.graphviz")
    assert response.text.startswith("digraph backprop {")
    assert "x1 -> hidden_1" in response.text


def test_posted_weights_give_the_same_trace(server: Server) -> None:
    body = {
        "x": [5, 3],
        "label": 1,
        "weights": {
            "layers": [
                {"weights": [[1, -1, 3], [2, 2, -1]], "bias": None, "activation": "sigmoid"},
                {"weights": [[0.1], [0.5], [-0.1]], "bias": None, "activation": "sigmoid"},
            ]
        },
    }
    response = server.post("/backprop", json=body)
    assert response.status_code == 200, response.text
    close(response.json()["grad_input"], REFERENCE["grad_x"])
    softmax = server.post(
        "/backprop",
        json={
            "x": [1.0, -2.0],
            "label": 2,
            "weights": {
                "layers": [
                    {
                        "weights": [[0.5, -0.3], [0.2, 0.8]],
                        "bias": [0.1, 0.0],
                        "activation": "tanh",
                    },
                    {
                        "weights": [[1, 0, -1], [0.5, 0.5, 0.5]],
                        "bias": [0, 0, 0],
                        "activation": "softmax",
                    },
                ]
            },
        },
    )
    assert softmax.status_code == 200, softmax.text
    trace = softmax.json()
    assert trace["loss_name"] == "categorical_cross_entropy"
    assert trace["layers"][1]["activation_derivative"] is None
    assert trace["gradient_check"]["passed"] is True


@pytest.mark.parametrize(
    "query",
    [
        "weights=lecture&x=5&label=1",
        "weights=lecture&x=5&x=3&x=1&label=1",
        "weights=lecture&x=5&x=3",
        "weights=lecture&x=5&x=3&label=7",
        "weights=lecture&x=5&x=abc&label=1",
        "weights=lecture&x=5&x=3&label=1&learning_rate=-1",
        "weights=lecture&x=5&x=3&label=1&format=pdf",
        "weights=other&x=5&x=3&label=1",
        "x=5&label=1",
        "sepal_length=5&label=1",
        "sepal_length=5&sepal_width=x&label=1",
        "x=5&x=3&label=rose",
        "label=1",
        "weights=lecture&x=5&x=3&label=" + "9" * 309,  # past float64 as a number
        "weights=lecture&x=5&x=3&label=" + "9" * 4301,  # past int()'s digits
        "x=5&x=3&label=" + "9" * 5000,  # and on a stored model
        "weights=lecture&x=5&x=3&label=\u0661",  # ARABIC-INDIC DIGIT ONE: not an index
        "sepal_length=1_0&sepal_width=3&label=1",  # float() would read 10
        "sepal_length=\u0665&sepal_width=3&label=1",
    ],
)
def test_bad_queries_are_422(server: Server, query: str) -> None:
    response = server.get(f"/backprop?{query}")
    assert response.status_code == 422, (query, response.text)


@pytest.mark.parametrize("label", [10**309, -(10**400), 2**64, "9" * 309])
def test_a_huge_label_in_the_body_is_422(server: Server, label: object) -> None:
    body = b'{"x": [5, 3], "weights": "lecture", "label": %s}' % str(label).encode()
    if isinstance(label, str):
        body = body.replace(label.encode(), b'"' + label.encode() + b'"')
    response = server.post("/backprop", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "label must be 0/1" in response.text and len(response.text) < 600


@pytest.mark.parametrize(
    "weights",
    [
        {"layers": []},
        {
            "layers": [
                {"weights": [[1, 2]], "activation": "sigmoid"},
                {"weights": [[1], [2], [3]], "activation": "sigmoid"},
            ]
        },
        {"layers": [{"weights": [[1], [2]], "activation": "swish"}]},
        {
            "layers": [
                {"weights": [[1, 2], [3, 4]], "activation": "softmax"},
                {"weights": [[1], [2]], "activation": "sigmoid"},
            ]
        },
        {"layers": [{"weights": [[1], [2]], "bias": [1, 2], "activation": "sigmoid"}]},
    ],
)
def test_bad_posted_weights_are_422(server: Server, weights: dict[str, object]) -> None:
    response = server.post("/backprop", json={"x": [5, 3], "label": 1, "weights": weights})
    assert response.status_code == 422, response.text


def test_unknown_version_trace_is_404(server: Server) -> None:
    response = server.get("/backprop?x=5&x=3&label=1&version=v-nope")
    assert response.status_code == 404


def test_posted_network_too_large_to_trace_is_422(server: Server) -> None:
    layer = {"weights": [[0.01] * 101 for _ in range(100)], "activation": "softmax"}
    response = server.post(
        "/backprop", json={"x": [1.0] * 100, "label": 0, "weights": {"layers": [layer]}}
    )
    assert response.status_code == 422
    assert "at most 10000" in response.text
    assert response.json()["detail"][0]["loc"] == ["body", "weights"]
