"""Model metadata, the list of versions, activation and rollback."""

from __future__ import annotations

from .server import Server

METADATA_FIELDS = {
    "version",
    "created_at",
    "features",
    "classes",
    "target",
    "architecture",
    "preprocessing",
    "training",
    "metrics",
    "sha256",
}


def test_active_model_metadata(server: Server) -> None:
    response = server.get("/model")
    assert response.status_code == 200
    meta = response.json()
    assert METADATA_FIELDS <= set(meta)
    assert meta["name"] == "iris-net"
    assert meta["features"] == ["sepal_length", "sepal_width"]
    assert meta["classes"] == ["not-setosa", "setosa"]
    assert meta["target"] == "setosa"
    layers = meta["architecture"]["layers"]
    assert [(layer["in"], layer["out"], layer["activation"]) for layer in layers] == [
        (2, 3, "sigmoid"),
        (3, 1, "sigmoid"),
    ]
    assert set(meta["metrics"]) >= {
        "train_accuracy",
        "test_accuracy",
        "train_loss",
        "test_loss",
        "epochs",
        "converged",
        "seconds",
    }
    assert meta["metrics"]["test_accuracy"] >= 0.95
    assert len(meta["sha256"]) == 64
    assert len(meta["preprocessing"]["mean"]) == 2


def test_models_lists_versions_newest_first_with_active_flag(server: Server) -> None:
    versions = server.get("/models").json()
    assert versions and sum(v["active"] for v in versions) == 1
    created = [v["created_at"] for v in versions]
    assert created == sorted(created, reverse=True)
    one = server.get(f"/models/{versions[0]['version']}")
    assert one.status_code == 200 and one.json()["version"] == versions[0]["version"]


def test_unknown_versions_are_404_never_a_file(server: Server) -> None:
    for path in ("/models/nope", "/models/..%2Fregistry.sqlite3", "/models/%2E%2E"):
        assert server.get(path).status_code in (404, 422), path
    missing = server.post("/models/nope/activate", headers=server.auth)
    assert missing.status_code == 404


def test_train_then_activate_and_roll_back(private_server: Server) -> None:
    server = private_server
    first = server.get("/model").json()["version"]
    job = server.post(
        "/train",
        params={"wait": "true"},
        headers=server.auth,
        json={"hidden_units": 4, "activate": False, "max_epochs": 300},
    )
    assert job.status_code == 201, job.text
    second = job.json()["result"]["model_version"]
    assert job.json()["result"]["activated"] is False
    assert server.get("/model").json()["version"] == first  # activate=false kept it
    answer = server.post("/predict", params={"version": second}, json={"instances": [[5, 3]]})
    assert answer.status_code == 200 and answer.json()["model_version"] == second

    activated = server.post(f"/models/{second}/activate", headers=server.auth)
    assert activated.status_code == 200
    assert activated.json()["version"] == second and activated.json()["active"] is True
    assert server.get("/model").json()["version"] == second
    assert server.post("/predict", json={"instances": [[5, 3]]}).json()["model_version"] == second

    rollback = server.post(f"/models/{first}/activate", headers=server.auth)
    assert rollback.status_code == 200
    assert server.get("/model").json()["version"] == first
    listed = {v["version"]: v["active"] for v in server.get("/models").json()}
    assert listed == {first: True, second: False}


def test_corrupt_version_is_never_served(private_server: Server) -> None:
    server = private_server
    first = server.get("/model").json()["version"]
    job = server.post(
        "/train",
        params={"wait": "true"},
        headers=server.auth,
        json={"activate": False, "max_epochs": 50},
    )
    second = job.json()["result"]["model_version"]
    weights = server.store / second / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    refused = server.post(f"/models/{second}/activate", headers=server.auth)
    assert refused.status_code == 409
    assert "corrupted" in refused.text
    predict = server.post("/predict", params={"version": second}, json={"instances": [[5, 3]]})
    assert predict.status_code == 503
    listed = {v["version"]: v for v in server.get("/models").json()}
    assert listed[second]["status"] == "invalid" and listed[second]["reason"]
    assert server.get("/model").json()["version"] == first
