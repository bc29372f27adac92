"""POST /backprop with steps: the lecture's last experiment in one call, its bounds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from .server import Server

LECTURE = {"x": [5.0, 3.0], "weights": "lecture"}
CUSTOM_WEIGHTS = {
    "layers": [
        {"weights": [[1, -1, 3], [2, 2, -1]], "bias": None, "activation": "sigmoid"},
        {"weights": [[0.1], [0.5], [-0.1]], "bias": None, "activation": "sigmoid"},
    ]
}


@pytest.mark.parametrize(("label", "towards"), [(1, 1.0), (0, 0.0)])
def test_the_lecture_descent_lowers_the_loss_for_both_labels(
    server: Server, label: int, towards: float
) -> None:
    answer = server.post("/backprop", json={**LECTURE, "label": label, "steps": 100})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "lecture"
    descent = body["descent"]
    assert descent["steps"] == 100 and descent["learning_rate"] == 0.1
    loss, output = np.array(descent["loss"]), np.array(descent["output"])
    assert loss.shape == (101,) and output.shape == (101, 1)
    assert np.all(np.diff(loss) < 0)
    assert loss[0] == pytest.approx(body["loss"], rel=1e-12)  # index 0: before any step
    assert output[0].tolist() == pytest.approx(body["output"], rel=1e-12)
    assert abs(output[-1, 0] - towards) < 0.06 and loss[-1] < 0.06
    # The trace itself stays that of the initial weights:
    assert body["layers"][0]["weights"] == [[1, -1, 3], [2, 2, -1]]
    assert "weights_after_step" not in body["layers"][0]


def test_reference_figures_and_the_same_answer_for_the_spelled_out_weights(server: Server) -> None:
    lecture = server.post("/backprop", json={**LECTURE, "label": 1, "steps": 2}).json()
    assert lecture["descent"]["loss"][:2] == pytest.approx([0.5269922664, 0.4804719858], rel=1e-9)
    custom = server.post(
        "/backprop", json={"x": [5, 3], "label": 1, "weights": CUSTOM_WEIGHTS, "steps": 2}
    ).json()
    assert custom["model_version"] == "custom"
    assert custom["descent"] == lecture["descent"]


def test_a_given_learning_rate_is_used_and_shown_as_one_step(server: Server) -> None:
    body = server.post(
        "/backprop", json={**LECTURE, "label": 1, "steps": 1, "learning_rate": 2.0}
    ).json()
    assert body["descent"]["learning_rate"] == 2.0
    after = np.array(body["layers"][0]["weights_after_step"])
    grad = np.array(body["layers"][0]["grad_weights"])
    np.testing.assert_allclose(after, np.array([[1, -1, 3], [2, 2, -1]]) - 2.0 * grad)
    assert body["descent"]["loss"][1] < body["descent"]["loss"][0]


def test_no_steps_means_no_descent(server: Server) -> None:
    for extra in ({}, {"steps": 0}):
        body = server.post("/backprop", json={**LECTURE, "label": 1, **extra}).json()
        assert "descent" not in body


def test_the_bounds_themselves_are_accepted(server: Server) -> None:
    body = server.post(
        "/backprop", json={**LECTURE, "label": 0, "steps": 10_000, "learning_rate": 10}
    ).json()
    assert len(body["descent"]["loss"]) == 10_001
    assert body["descent"]["loss"][-1] < 1e-3


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"steps": -1}, ["body", "steps"]),
        ({"steps": 10_001}, ["body", "steps"]),
        ({"steps": 2.5}, ["body", "steps"]),
        ({"steps": "many"}, ["body", "steps"]),
        ({"learning_rate": 0}, ["body", "learning_rate"]),
        ({"learning_rate": 10.5}, ["body", "learning_rate"]),
        ({"learning_rate": -1}, ["body", "learning_rate"]),
        ({"weights": "lecturer"}, ["body", "weights"]),
        ({"label": 2}, ["body"]),
        ({"x": [5.0]}, ["body"]),
    ],
)
def test_bad_fields_are_a_422_naming_them(
    server: Server, change: dict[str, Any], loc: list[str]
) -> None:
    answer = server.post("/backprop", json={**LECTURE, "label": 1, "steps": 5, **change})
    assert answer.status_code == 422, answer.text
    first = answer.json()["detail"][0]["loc"]
    assert first[: len(loc)] == loc, answer.json()
