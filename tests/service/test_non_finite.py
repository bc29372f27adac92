"""Issue 10: NaN and Infinity, as Python's json.dumps writes them, get a precise answer."""

from __future__ import annotations

import json

import pytest

from .server import Server

ROWS = [[float("nan"), 3.5], [float("inf"), 3.5], [float("-inf"), 3.5]]


@pytest.mark.parametrize("row", ROWS, ids=["NaN", "Infinity", "-Infinity"])
def test_predict_says_nan_and_infinity_are_not_json_numbers(server: Server, row: list) -> None:
    body = json.dumps({"instances": [row]})  # what a Python client writes
    answer = server.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body"] and error["type"] == "finite_number"
    assert "NaN and Infinity are not JSON numbers" in error["msg"]
    assert "every value must be a finite number" in error["msg"]
    assert "unexpected character" not in error["msg"]


def test_predict_names_a_number_beyond_a_double(server: Server) -> None:
    body = b'{"instances": [[5.1, -1e400]]}'
    answer = server.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert "finite number" in answer.json()["detail"][0]["msg"]


def test_broken_json_is_still_called_broken(server: Server) -> None:
    body = b'{"instances": [[5.1, Nope]]}'
    answer = server.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert "not valid JSON" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_v2_infer_answers_400_with_the_same_meaning(server: Server, value: float) -> None:
    tensor = {"name": "features", "shape": [1, 2], "datatype": "FP64", "data": [5.1, value]}
    body = json.dumps({"inputs": [tensor]})
    answer = server.post("/v2/models/iris-net/infer", content=body)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]
    assert "NaN and Infinity are not JSON numbers" in message
    assert "every value must be a finite number" in message
