"""Property tests (hypothesis) of the request schemas and the predict parse path,
in-process, plus the numerics end to end on the shared server: any finite row of
any magnitude is answered with probabilities in [0, 1] summing to 1, or a 422 that
names the row. Never a NaN, never a 500.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from model.train import TrainConfig, train
from service.cache import LoadedModel
from service.errors import InvalidInput
from service.inference import parse_instances
from service.schemas import IRIS_FEATURES, BackpropRequest, TrainRequest

from .server import Server

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
IN_BOUNDS: dict[str, st.SearchStrategy[Any]] = {
    "features": st.lists(st.sampled_from(IRIS_FEATURES), min_size=1, max_size=4, unique=True),
    "target": st.sampled_from(["setosa", "versicolor", "virginica", "species"]),
    "hidden_units": st.integers(0, 64),
    "hidden_activation": st.sampled_from(["sigmoid", "tanh", "relu"]),
    "optimizer": st.sampled_from(["gd", "sgd", "adam"]),
    "learning_rate": st.floats(0, 10, exclude_min=True),
    "batch_size": st.integers(1, 10_000),
    "max_epochs": st.integers(1, 100_000),
    "tolerance": st.floats(0, 1e6),
    "standardize": st.booleans(),
    "test_fraction": st.floats(0, 0.5),
    "seed": st.integers(0, 2**63 - 1),
    "activate": st.booleans(),
    "min_test_accuracy": st.floats(0, 1),
}
OUT_OF_BOUNDS: dict[str, st.SearchStrategy[Any]] = {
    "hidden_units": st.integers(65, 10**9) | st.integers(max_value=-1),
    "max_epochs": st.integers(100_001, 10**12) | st.integers(max_value=0),
    "learning_rate": st.floats(max_value=0) | st.floats(min_value=10, exclude_min=True),
    "test_fraction": st.floats(max_value=0, exclude_max=True) | st.floats(0.5, exclude_min=True),
    "batch_size": st.integers(max_value=0),
    "seed": st.integers(max_value=-1),
    "min_test_accuracy": st.floats(1, exclude_min=True),
}


@settings(max_examples=200, deadline=None)
@given(body=st.fixed_dictionaries({}, optional=IN_BOUNDS))
def test_train_requests_within_the_bounds_are_accepted(body: dict[str, Any]) -> None:
    TrainRequest.model_validate(body)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), field=st.sampled_from(sorted(OUT_OF_BOUNDS)))
def test_train_requests_out_of_bounds_name_the_field(data: st.DataObject, field: str) -> None:
    value = data.draw(OUT_OF_BOUNDS[field].filter(lambda v: not isinstance(v, float) or v == v))
    with pytest.raises(ValidationError) as caught:
        TrainRequest.model_validate({field: value})
    assert field in {str(part) for error in caught.value.errors() for part in error["loc"]}


@settings(max_examples=300, deadline=None)
@given(body=JSON)
def test_any_json_is_a_train_request_or_a_validation_error(body: Any) -> None:
    for schema in (TrainRequest, BackpropRequest):
        try:
            schema.model_validate(body)
        except ValidationError as exc:
            assert exc.errors()  # each error has a loc and a message
            assert all("msg" in error and "loc" in error for error in exc.errors())


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    clf = train(TrainConfig(max_epochs=50))
    return LoadedModel("v-test", clf, {})


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(instances=JSON)
def test_any_instances_parse_or_are_a_422(loaded: LoadedModel, instances: Any) -> None:
    body = json.dumps({"instances": instances}).encode()  # big integers too
    try:
        X = parse_instances(body, loaded, 100)
    except InvalidInput as exc:
        assert exc.status_code == 422 and exc.msg
        return
    assert X.shape[1] == 2 and all(math.isfinite(v) for v in X.ravel())


ROW = st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=2, max_size=2)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=st.lists(ROW, min_size=1, max_size=4), named=st.booleans())
def test_any_finite_rows_get_probabilities_or_a_422_naming_the_row(
    server: Server, rows: list[list[float]], named: bool
) -> None:
    features = ("sepal_length", "sepal_width")
    instances = [dict(zip(features, row, strict=True)) for row in rows] if named else rows
    answer = server.post("/predict", content=orjson.dumps({"instances": instances}))
    assert answer.status_code in (200, 422), answer.text
    if answer.status_code == 422:
        (error,) = answer.json()["detail"]
        assert error["loc"][:2] == ["body", "instances"] and isinstance(error["loc"][2], int)
        assert max(abs(v) for v in rows[error["loc"][2]]) > 1e100  # only overflowing rows
        return
    for prediction in answer.json()["predictions"]:
        probabilities = list(prediction["probabilities"].values())
        assert all(isinstance(p, float) and 0 <= p <= 1 for p in probabilities)
        assert abs(sum(probabilities) - 1) < 1e-6
