"""GET /model/decision-surface against a live server: shape, bounds, features, errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.data import Table
from model.iris import iris
from model.serialize import save_model
from model.train import TrainConfig, train

from .server import Server, start_server

PATH = "/model/decision-surface"


RNG_ROWS = np.random.default_rng(0).normal([10.0, -3.0], [2.0, 0.5], size=(40, 2)).round(3)
TABLE = Table(["a", "b"], RNG_ROWS.tolist(), ["p", "q"] * 20)
# Extra versions, trained here and copied into the store (registered at start, not active):
# training them through POST /train would cost a process start and seconds each.
EXTRA = {
    "v-species": (TrainConfig(features=None, target="species", max_epochs=60), None),
    "v-unscaled": (
        TrainConfig(
            features=["sepal_length", "petal_length", "petal_width"],
            standardize=False,
            max_epochs=60,
        ),
        None,
    ),
    "v-table": (TrainConfig(features=None, target="custom", max_epochs=60), TABLE),
    "v-table-unscaled": (
        TrainConfig(features=None, target="custom", standardize=False, max_epochs=60),
        TABLE,
    ),
    "v-one-feature": (TrainConfig(features=["petal_length"], max_epochs=60), None),
}


@pytest.fixture(scope="module")
def surface_server(seed_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own, its store holding the EXTRA versions too."""
    store = tmp_path_factory.mktemp("surface") / "models"
    shutil.copytree(seed_store, store)
    for version, (config, table) in EXTRA.items():
        save_model(train(config, table), store / version)
    running = start_server(store, tmp_path_factory.mktemp("logs"))
    yield running
    assert running.stop() == 0, running.output()


def test_default_features_shape_bounds_and_points(surface_server: Server) -> None:
    model = surface_server.get("/model").json()
    answer = surface_server.get(PATH)
    assert answer.status_code == 200, answer.text
    s = answer.json()
    assert s["model_version"] == model["version"]
    assert s["features"] == model["features"] == ["sepal_length", "sepal_width"]
    assert s["classes"] == model["classes"]
    assert len(s["x"]) == len(s["y"]) == 50
    assert s["x"][0] == pytest.approx(4.3 - 0.5) and s["x"][-1] == pytest.approx(7.9 + 0.5)
    assert s["y"][0] == pytest.approx(2.0 - 0.5) and s["y"][-1] == pytest.approx(4.4 + 0.5)
    assert np.all(np.diff(s["x"]) > 0) and np.all(np.diff(s["y"]) > 0)
    assert s["held"] == {}
    p = np.array(s["probabilities"])
    assert p.shape == (50, 50, 2)
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=2), 1.0, atol=1e-12)
    assert np.array(s["labels"]).tolist() == p.argmax(axis=2).tolist()
    assert len(s["points"]) == 150
    table = iris()
    assert [pt["x"] for pt in s["points"]] == table.column("sepal_length").tolist()
    assert [pt["y"] for pt in s["points"]] == table.column("sepal_width").tolist()
    assert [pt["species"] for pt in s["points"]] == list(table.species)
    assert {(pt["species"], pt["class"]) for pt in s["points"]} == {
        ("setosa", "setosa"),
        ("versicolor", "not-setosa"),
        ("virginica", "not-setosa"),
    }
    assert set(np.array(s["labels"]).ravel()) == {0, 1}, "both classes show in the Iris range"


def test_probabilities_equal_what_predict_answers(surface_server: Server) -> None:
    s = surface_server.get(PATH, params={"resolution": 7}).json()
    rows = [[x, y] for y in s["y"] for x in s["x"]]  # row j is y[j], column i is x[i]
    answer = surface_server.post("/predict", json={"instances": rows}).json()
    assert answer["model_version"] == s["model_version"]
    expected = [[p["probabilities"][c] for c in s["classes"]] for p in answer["predictions"]]
    assert np.array(s["probabilities"]).reshape(49, 2).tolist() == expected
    labels = [s["classes"].index(p["label"]) for p in answer["predictions"]]
    assert np.array(s["labels"]).ravel().tolist() == labels


def test_named_features_a_version_and_held_means(surface_server: Server) -> None:
    version = "v-species"
    meta = surface_server.get(f"/models/{version}").json()
    s = surface_server.get(
        PATH,
        params={"x": "petal_width", "y": "petal_length", "resolution": 4, "version": version},
    ).json()
    assert s["model_version"] == version and s["features"] == ["petal_width", "petal_length"]
    assert s["classes"] == ["setosa", "versicolor", "virginica"]
    assert s["x"][0] == pytest.approx(0.1 - 0.5) and s["y"][-1] == pytest.approx(6.9 + 0.5)
    means = dict(zip(meta["features"], meta["preprocessing"]["mean"], strict=True))
    assert s["held"] == {name: means[name] for name in ("sepal_length", "sepal_width")}
    assert np.array(s["probabilities"]).shape == (4, 4, 3)
    assert {(pt["species"], pt["class"]) for pt in s["points"]} == {
        (name, name) for name in ("setosa", "versicolor", "virginica")
    }
    point = s["points"][0]
    assert (point["x"], point["y"]) == (0.2, 1.4)  # the first flower: petal width, length
    # The held rows through /predict (named, so order does not matter) agree:
    row = {"sepal_length": means["sepal_length"], "sepal_width": means["sepal_width"]}
    row |= {"petal_width": s["x"][1], "petal_length": s["y"][2]}
    answer = surface_server.post(
        "/predict", params={"version": version}, json={"instances": [row]}
    ).json()
    probabilities = answer["predictions"][0]["probabilities"]
    # One row is computed on Python floats, the grid with NumPy: the last digits may differ.
    expected = [probabilities[c] for c in s["classes"]]
    assert s["probabilities"][2][1] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_unstandardised_iris_model_holds_the_iris_means(surface_server: Server) -> None:
    version = "v-unscaled"
    s = surface_server.get(PATH, params={"version": version, "resolution": 2}).json()
    assert s["held"] == {"petal_width": pytest.approx(float(iris().column("petal_width").mean()))}


def test_a_table_of_ones_own_spans_mean_plus_minus_three_std(surface_server: Server) -> None:
    version = "v-table"
    meta = surface_server.get(f"/models/{version}").json()
    mean, std = meta["preprocessing"]["mean"], meta["preprocessing"]["std"]
    s = surface_server.get(PATH, params={"version": version, "resolution": 3}).json()
    assert s["features"] == ["a", "b"] and s["points"] == []
    assert s["x"] == pytest.approx([mean[0] - 3 * std[0], mean[0], mean[0] + 3 * std[0]])
    assert s["y"] == pytest.approx([mean[1] - 3 * std[1], mean[1], mean[1] + 3 * std[1]])
    refused = surface_server.get(PATH, params={"version": "v-table-unscaled"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "x"]
    assert "standardize" in refused.json()["detail"][0]["msg"]


def test_a_one_feature_model_is_a_422_with_the_reason(surface_server: Server) -> None:
    version = "v-one-feature"
    answer = surface_server.get(PATH, params={"version": version})
    assert answer.status_code == 422
    assert "needs two" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"x": "petal_length"}, ["query", "x"]),
        ({"y": "nope"}, ["query", "y"]),
        ({"x": "sepal_width"}, ["query", "y"]),  # y defaults to the same feature
        ({"x": "sepal_length", "y": "sepal_length"}, ["query", "y"]),
        ({"resolution": 1}, ["query", "resolution"]),
        ({"resolution": 201}, ["query", "resolution"]),
        ({"resolution": "many"}, ["query", "resolution"]),
    ],
)
def test_bad_parameters_are_a_422_naming_them(
    surface_server: Server, params: dict[str, Any], loc: list[str]
) -> None:
    answer = surface_server.get(PATH, params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == loc


def test_the_resolution_bounds_themselves_work(surface_server: Server) -> None:
    small = surface_server.get(PATH, params={"resolution": 2}).json()
    assert len(small["x"]) == 2 and np.array(small["probabilities"]).shape == (2, 2, 2)
    large = surface_server.get(PATH, params={"resolution": 200}).json()
    assert np.array(large["labels"]).shape == (200, 200)


def test_an_unknown_version_is_a_404(surface_server: Server) -> None:
    answer = surface_server.get(PATH, params={"version": "v-nope"})
    assert answer.status_code == 404 and "v-nope" in answer.json()["detail"]


def test_it_is_in_the_openapi_schema(surface_server: Server) -> None:
    operation = surface_server.get("/openapi.json").json()["paths"][PATH]["get"]
    assert {"200", "404", "422", "503"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} == {"x", "y", "resolution", "version"}
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/DecisionSurface")
