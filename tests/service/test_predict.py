"""POST /predict: answers, and a clear 4xx for every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .server import Server, start_server


def test_positional_and_named_rows_get_labels_and_probabilities(server: Server) -> None:
    response = server.post(
        "/predict",
        json={"instances": [[5.1, 3.5], [6.7, 3.1]]},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == server.get("/model").json()["version"]
    first, second = body["predictions"]
    assert first["label"] == "setosa" and second["label"] == "not-setosa"
    assert list(first["probabilities"]) == ["not-setosa", "setosa"]
    assert sum(first["probabilities"].values()) == pytest.approx(1.0)
    named = server.post(
        "/predict", json={"instances": [{"sepal_width": 3.5, "sepal_length": 5.1}]}
    ).json()
    positional = server.post("/predict", json={"instances": [[5.1, 3.5]]}).json()
    assert named["predictions"][0] == positional["predictions"][0]
    assert named["predictions"][0]["label"] == first["label"]


def test_a_row_alone_answers_as_in_a_batch(server: Server) -> None:
    # One row takes the Python-float forward pass; a batch takes NumPy's. They agree to
    # the last few units in the last place, and on the label.
    rows = [[5.1, 3.5], [6.7, 3.1], [4.3, 2.0], [7.9, 4.4], [0.0, 0.0], [-50.0, 1e3]]
    batch = server.post("/predict", json={"instances": rows}).json()["predictions"]
    for row, in_batch in zip(rows, batch, strict=True):
        alone = server.post("/predict", json={"instances": [row]}).json()["predictions"][0]
        assert alone["label"] == in_batch["label"]
        for name, p in alone["probabilities"].items():
            assert p == pytest.approx(in_batch["probabilities"][name], rel=1e-12, abs=1e-15)


def test_batch_up_to_the_limit(server: Server) -> None:
    rows = [[4.5 + (i % 30) / 10, 2.0 + (i % 20) / 10] for i in range(10_000)]
    response = server.post("/predict", json={"instances": rows})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 10_000
    over = server.post("/predict", json={"instances": rows + [[5.0, 3.0]]})
    assert over.status_code == 422
    assert "10000" in over.text


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "instances"),
        (b'{"rows": [[5, 3]]}', "instances"),
        (b'{"instances": []}', "1 to"),
        (b'{"instances": [5, 3]}', "sepal_length"),
        (b'{"instances": "5,3"}', "list"),
        (b'{"instances": [[5.0]]}', "sepal_length"),
        (b'{"instances": [[5.0, 3.0, 1.0]]}', "sepal_length"),
        (b'{"instances": [[5.0, NaN]]}', "NaN and Infinity are not JSON numbers"),
        (b'{"instances": [[5.0, Infinity]]}', "NaN and Infinity are not JSON numbers"),
        (b'{"instances": [[5.0, 1e999]]}', "infinity"),
        (b'{"instances": [[5.0, "3.0"]]}', "finite number"),
        (b'{"instances": [[5.0, true]]}', "finite number"),
        (b'{"instances": [[5.0, null]]}', "finite number"),
        (b'{"instances": [{"sepal_length": 5.0}]}', "sepal_width"),
        (
            b'{"instances": [{"sepal_length": 5, "sepal_width": 3, "petal_length": 1}]}',
            "petal_length",
        ),
        (b'{"instances": [[5.0, 3.0], {"sepal_length": 5.0}]}', "sepal_width"),
    ],
)
def test_bad_bodies_are_422_naming_the_problem(server: Server, body: bytes, needle: str) -> None:
    response = server.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"][0] == "body"
    assert needle in detail[0]["msg"]


def test_body_over_the_limit_is_413(server: Server) -> None:
    big = b'{"instances": [' + b"[5.0, 3.0]," * 250_000 + b"[5.0, 3.0]]}"
    assert len(big) > 2 * 1024 * 1024
    response = server.post("/predict", content=big)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    def chunks():  # no Content-Length: the server has to count
        yield b'{"instances": ['
        for _ in range(250_000):
            yield b"[5.0, 3.0],"
        yield b"[5.0, 3.0]]}"

    response = httpx.post(server.url + "/predict", content=chunks(), timeout=60)
    assert response.status_code == 413


def test_unknown_or_malformed_version_is_404(server: Server) -> None:
    for version in ("v-does-not-exist", "../registry.sqlite3", "..", "a/b"):
        response = server.post(
            "/predict", params={"version": version}, json={"instances": [[5.0, 3.0]]}
        )
        assert response.status_code == 404, (version, response.text)


def test_stored_version_answers_by_id(server: Server) -> None:
    version = server.get("/model").json()["version"]
    response = server.post(
        "/predict", params={"version": version}, json={"instances": [[5.0, 3.0]]}
    )
    assert response.status_code == 200
    assert response.json()["model_version"] == version
    # the last version= counts, as for every other route; an empty one is unset
    last = server.post(f"/predict?version=v-nope&version={version}", json={"instances": [[5, 3]]})
    assert last.status_code == 200
    unset = server.post("/predict?version=v-nope&version=", json={"instances": [[5, 3]]})
    assert unset.status_code == 200 and unset.json()["model_version"] == version


def test_small_limits_come_from_settings(tmp_path: Path, seed_store: Path) -> None:
    import shutil

    store = tmp_path / "models"
    shutil.copytree(seed_store, store)
    running = start_server(
        store, tmp_path, env={"BACKPROP_MAX_BATCH_ROWS": "2", "BACKPROP_MAX_BODY_BYTES": "2048"}
    )
    try:
        ok = running.post("/predict", json={"instances": [[5, 3], [6, 3]]})
        assert ok.status_code == 200
        rows = running.post("/predict", json={"instances": [[5, 3]] * 3})
        assert rows.status_code == 422
        size = running.post("/predict", content=b'{"instances": [' + b" " * 3000 + b"[5,3]]}")
        assert size.status_code == 413
    finally:
        running.stop()


def test_openapi_documents_predict(server: Server) -> None:
    schema = server.get("/openapi.json").json()
    operation = schema["paths"]["/predict"]["post"]
    assert "instances" in str(operation["requestBody"])
    assert "version" in str(operation["parameters"])


def test_finite_but_overflowing_rows_are_422_never_nan(server: Server) -> None:
    for row in ([1e308, 1e308], [-1e308, 1e308], [1e308, -1e308], [-1e308, -1e308]):
        response = server.post("/predict", json={"instances": [[5.0, 3.0], row]})
        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            for prediction in response.json()["predictions"]:
                assert all(isinstance(p, float) for p in prediction["probabilities"].values())
        else:
            assert response.json()["detail"][0]["loc"] == ["body", "instances", 1]
    nan_row = server.post("/predict", json={"instances": [[1e308, 1e308]]})
    assert nan_row.status_code == 422


def test_openapi_references_all_resolve(server: Server) -> None:
    import json
    import re

    text = server.get("/openapi.json").text
    components = set(json.loads(text)["components"]["schemas"])
    refs = set(re.findall(r'"\$ref":\s*"([^"]+)"', text))
    assert refs, "the schema uses components"
    unresolved = [r for r in refs if r.removeprefix("#/components/schemas/") not in components]
    assert not unresolved
