"""Training jobs: bounds, waiting, following, listing, cancelling, the queue, inline data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from .server import Server, start_server

LONG_JOB = {"optimizer": "sgd", "batch_size": 1, "max_epochs": 100_000, "tolerance": 0}


def wait_for(
    server: Server, job_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = server.get(f"/train/{job_id}").json()
        if job["status"] in statuses:
            return dict(job)
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} never reached {statuses}")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("features", []),
        ("features", ["sepal_length", "sepal_length"]),
        ("features", ["petal_colour"]),
        ("features", ["a", "b", "c", "d", "e"]),
        ("target", "rose"),
        ("hidden_units", -1),
        ("hidden_units", 65),
        ("hidden_units", 1.5),
        ("hidden_activation", "softmax"),
        ("hidden_activation", "step"),
        ("optimizer", "newton"),
        ("optimizer", "LBFGS"),
        ("learning_rate", 0),
        ("learning_rate", -0.1),
        ("learning_rate", 10.5),
        ("batch_size", 0),
        ("batch_size", 100_001),
        ("max_epochs", 0),
        ("max_epochs", 100_001),
        ("tolerance", -1e-9),
        ("standardize", "maybe"),
        ("test_fraction", -0.1),
        ("test_fraction", 0.6),
        ("seed", -1),
        ("seed", "zero"),
        ("min_test_accuracy", 1.5),
        ("min_test_accuracy", -0.1),
        ("activate", "sometimes"),
        ("colour", "blue"),
    ],
)
def test_every_bound_is_a_422_naming_the_field(server: Server, field: str, value: Any) -> None:
    response = server.post("/train", headers=server.auth, json={field: value})
    assert response.status_code == 422, response.text
    assert field in response.text
    if field != "features":  # the features' rules span fields: the body is their place
        assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]


@pytest.mark.parametrize(
    "data",
    [
        {"feature_names": ["a", "b"], "rows": [[1, 2], [3]], "labels": ["x", "y"]},
        {"feature_names": ["a"], "rows": [[1], [2]], "labels": ["x", "x"]},
        {"feature_names": ["a"], "rows": [[1], [2], [3]], "labels": ["x", "y"]},
        {"feature_names": ["a", "a"], "rows": [[1, 2], [3, 4]], "labels": ["x", "y"]},
        {"feature_names": ["a"], "rows": [[1], ["two"]], "labels": ["x", "y"]},
        # what the trainer refuses is refused at the door, never queued to fail:
        {"feature_names": ["", "b"], "rows": [[1, 2], [3, 4]], "labels": ["x", "y"]},
        {"feature_names": ["a", "  "], "rows": [[1, 2], [3, 4]], "labels": ["x", "y"]},
        {"feature_names": ["a"], "rows": [[1], [2], [3]], "labels": ["x", "", "y"]},
        {
            "feature_names": ["a"],
            "rows": [[i] for i in range(65)],
            "labels": [f"c{i}" for i in range(65)],
        },
    ],
)
def test_bad_tables_are_422(server: Server, data: dict[str, Any]) -> None:
    response = server.post("/train", headers=server.auth, json={"data": data})
    assert response.status_code == 422, response.text
    assert all(error["loc"][:2] == ["body", "data"] for error in response.json()["detail"])


def test_no_body_is_the_default_job(server: Server) -> None:
    """Every field is optional: ``curl -X POST /train`` queues the default model's job."""
    response = server.post("/train", headers=server.auth)
    assert response.status_code == 202, response.text
    default = server.post("/train", headers=server.auth, json={})
    assert response.json()["config"] == default.json()["config"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_is_a_415_that_says_so(
    server: Server, content_type: str | None
) -> None:
    """FastAPI reads a body as JSON only with a JSON Content-Type (``curl -d`` sends a
    form's): the answer says what to send instead of "not a valid dictionary"."""
    headers = {**server.auth, **({"content-type": content_type} if content_type else {})}
    for path in ("/train", "/backprop"):
        response = server.post(path, headers=headers, content=b'{"max_epochs": 5}')
        assert response.status_code == 415, response.text
        assert "Content-Type: application/json" in response.json()["detail"]


def test_a_bad_row_in_a_large_table_is_not_echoed_whole(server: Server) -> None:
    rows = [[float(i), 1.0] for i in range(20_000)] + [[1.0]]  # the last row is short
    labels = ["x", "y"] * 10_000 + ["x"]
    data = {"feature_names": ["a", "b"], "rows": rows, "labels": labels}
    response = server.post("/train", headers=server.auth, json={"data": data})
    assert response.status_code == 422, response.text[:500]
    assert len(response.content) < 4096, len(response.content)
    assert "data.rows[20000] has 1 values" in response.text
    small = server.post("/train", headers=server.auth, json={"hidden_units": "three"})
    assert small.json()["detail"][0]["input"] == "three"  # a small input is still quoted


def test_nonfinite_table_values_are_422(server: Server) -> None:
    body = b'{"data": {"feature_names": ["a"], "rows": [[1.0], [NaN]], "labels": ["x", "y"]}}'
    response = server.post(
        "/train", headers={**server.auth, "content-type": "application/json"}, content=body
    )
    assert response.status_code == 422


def test_train_body_not_json_is_422(server: Server) -> None:
    response = server.post(
        "/train", headers={**server.auth, "content-type": "application/json"}, content=b"{"
    )
    assert response.status_code == 422


def test_queued_job_answers_202_with_location(private_server: Server) -> None:
    server = private_server
    response = server.post("/train", headers=server.auth, json={"max_epochs": 20})
    assert response.status_code == 202
    job = response.json()
    assert job["status"] in ("queued", "running")
    assert response.headers["location"] == job["status_url"] == f"/train/{job['job_id']}"
    done = wait_for(server, job["job_id"], {"succeeded"})
    assert done["result"]["model_version"]
    assert done["config"]["max_epochs"] == 20
    assert done["started_at"] and done["finished_at"] and done["created_at"]
    assert 1 <= len(done["history"]) <= 200
    listed = server.get("/train").json()["jobs"]
    assert listed[0]["job_id"] == job["job_id"]
    assert len(server.get("/train", params={"limit": 1}).json()["jobs"]) == 1
    assert server.get("/train/job-nope").status_code == 404


def test_wait_returns_the_finished_job_and_its_version_answers(private_server: Server) -> None:
    server = private_server
    response = server.post(
        "/train",
        params={"wait": "true"},
        headers=server.auth,
        json={
            "features": ["petal_length", "petal_width", "sepal_length", "sepal_width"],
            "target": "species",
            "optimizer": "adam",
            "learning_rate": 0.05,
            "max_epochs": 500,
            "batch_size": 16,
            "hidden_units": 5,
            "hidden_activation": "tanh",
            "seed": 3,
        },
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "succeeded"
    version = job["result"]["model_version"]
    assert job["result"]["metrics"]["test_accuracy"] >= 0.9
    assert server.get("/model").json()["version"] == version  # activate defaults to true
    answer = server.post(
        "/predict",
        params={"version": version},
        json={"instances": [[1.4, 0.2, 5.1, 3.5]]},
    ).json()
    assert answer["predictions"][0]["label"] == "setosa"
    assert list(answer["predictions"][0]["probabilities"]) == ["setosa", "versicolor", "virginica"]


def test_gate_keeps_a_weak_model_inactive(private_server: Server) -> None:
    server = private_server
    active = server.get("/model").json()["version"]
    job = server.post(
        "/train",
        params={"wait": "true"},
        headers=server.auth,
        json={"max_epochs": 1, "learning_rate": 0.0001, "min_test_accuracy": 1.0},
    ).json()
    assert job["status"] == "succeeded"
    assert job["result"]["activated"] is False and job["result"]["gate_passed"] is False
    assert server.get("/model").json()["version"] == active


def test_inline_table_trains_a_model_on_its_labels(private_server: Server) -> None:
    server = private_server
    rows = [[float(i), float(i % 7)] for i in range(60)]
    labels = ["low" if i < 30 else "high" for i in range(60)]
    response = server.post(
        "/train",
        params={"wait": "true"},
        headers=server.auth,
        json={
            "data": {"feature_names": ["size", "noise"], "rows": rows, "labels": labels},
            "test_fraction": 0,
            "max_epochs": 2000,
        },
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "succeeded", job
    assert job["result"]["metrics"]["test_accuracy"] is None
    meta = server.get("/model").json()
    assert meta["features"] == ["size", "noise"]
    assert sorted(meta["classes"]) == ["high", "low"]
    answer = server.post("/predict", json={"instances": [{"size": 2.0, "noise": 1.0}]}).json()
    assert answer["predictions"][0]["label"] == "low"


def test_target_does_not_apply_with_a_table(server: Server) -> None:
    response = server.post(
        "/train",
        headers=server.auth,
        json={
            "target": "species",
            "data": {"feature_names": ["a"], "rows": [[1], [2]], "labels": ["x", "y"]},
        },
    )
    assert response.status_code == 422


def test_cancel_running_then_finished_is_409(private_server: Server) -> None:
    server = private_server
    job_id = server.post("/train", headers=server.auth, json=LONG_JOB).json()["job_id"]
    running = wait_for(server, job_id, {"running"})
    assert running["status"] == "running"
    deadline = time.monotonic() + 20
    while not server.get(f"/train/{job_id}").json()["progress"] and time.monotonic() < deadline:
        time.sleep(0.1)
    progress = server.get(f"/train/{job_id}").json()
    assert progress["progress"]["epoch"] >= 1 and progress["progress"]["max_epochs"] == 100_000
    assert progress["history"]
    assert server.client().delete(f"/train/{job_id}").status_code == 401
    cancelled = server.client().delete(f"/train/{job_id}", headers=server.auth)
    assert cancelled.status_code == 200
    assert wait_for(server, job_id, {"cancelled"})["status"] == "cancelled"
    again = server.client().delete(f"/train/{job_id}", headers=server.auth)
    assert again.status_code == 409
    assert server.client().delete("/train/job-nope", headers=server.auth).status_code == 404


def test_full_queue_is_429_with_retry_after(tmp_path: Path, seed_store: Path) -> None:
    import shutil

    store = tmp_path / "models"
    shutil.copytree(seed_store, store)
    running = start_server(store, tmp_path, env={"BACKPROP_TRAIN_QUEUE_SIZE": "1"})
    try:
        first = running.post("/train", headers=running.auth, json=LONG_JOB).json()["job_id"]
        wait_for(running, first, {"running"})
        second = running.post("/train", headers=running.auth, json=LONG_JOB)
        assert second.status_code == 202
        third = running.post("/train", headers=running.auth, json=LONG_JOB)
        assert third.status_code == 429
        assert int(third.headers["retry-after"]) > 0
        queued = second.json()["job_id"]
        cancelled = running.client().delete(f"/train/{queued}", headers=running.auth).json()
        assert cancelled["status"] == "cancelled"
        running.client().delete(f"/train/{first}", headers=running.auth)
        wait_for(running, first, {"cancelled"})
    finally:
        assert running.stop() == 0


def test_train_body_not_utf8_is_422(server: Server) -> None:
    response = server.post(
        "/train", headers={**server.auth, "content-type": "application/json"}, content=b"&\xff\xfe"
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_openapi_documents_error_statuses(server: Server) -> None:
    paths = server.get("/openapi.json").json()["paths"]
    assert {"401", "403", "413", "429"} <= set(paths["/train"]["post"]["responses"])
    assert {"404", "409"} <= set(paths["/train/{job_id}"]["delete"]["responses"])
    assert "404" in paths["/models/{version}"]["get"]["responses"]
    assert "503" in paths["/model"]["get"]["responses"]


def test_lbfgs_trains_a_100000_row_table_within_the_job_limits(private_server: Server) -> None:
    """The largest table the schema takes, 8 features, as one body under 64 MiB."""
    import json

    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 8)).round(6)
    labels = np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)].tolist()
    names = [f"x{i}" for i in range(8)]
    body = {
        "data": {"feature_names": names, "rows": X.tolist(), "labels": labels},
        "optimizer": "lbfgs",
        "hidden_units": 16,
        "max_epochs": 3,
        "activate": False,
    }
    raw = json.dumps(body).encode()
    assert len(raw) < 64 * 1024 * 1024
    headers = {**private_server.auth, "Content-Type": "application/json"}
    response = private_server.post("/train", headers=headers, content=raw)
    assert response.status_code == 202, response.text[:500]
    job = wait_for(private_server, response.json()["job_id"], {"succeeded", "failed"}, 240)
    assert job["status"] == "succeeded", job["error"]
    assert job["config"]["optimizer"] == "lbfgs"
    assert job["result"]["metrics"]["epochs"] == 3
