"""Schemathesis against the live server's /openapi.json: every operation, every phase,
all checks but use_after_free (see the command below), not_a_server_error and
response_schema_conformance among them, with the token, bounded to about two
minutes. The one widening of a check is in schemathesis.toml, with its reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from .server import Server, start_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
FUZZ_SECONDS = 100


def test_schemathesis_finds_nothing(seed_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "models"
    shutil.copytree(seed_store, store)
    # One job trains at a time and two more may wait, so fuzzed jobs cannot pile up.
    # Fuzzed jobs stay tiny through the server's own bounds, which its OpenAPI states.
    env = {
        "BACKPROP_TRAIN_QUEUE_SIZE": "2",
        "BACKPROP_MAX_TRAIN_EPOCHS": "50",
        "BACKPROP_TRAIN_WAIT_SECONDS": "3",
    }
    server = start_server(store, tmp_path, env=env)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        # The one check left out, an open contract question: docs/API.md makes
        # DELETE /train/{job_id} *cancel* a job whose record stays readable
        # (status "cancelled"), where HTTP's DELETE would remove it (ST301,
        # "deleted resource still available"). Fixing it changes the contract
        # (e.g. POST /train/{job_id}/cancel), which is not this test's call.
        "--exclude-checks",
        "use_after_free",
        "--header",
        f"Authorization: Bearer {server.token}",
        "--max-time",
        str(FUZZ_SECONDS),
        "--workers",
        "1",  # CPython 3.11.7 can fail ast.parse in concurrent threads (gh-106905)
        "--seed",
        "10",
        "--request-timeout",
        "60",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "too_slow",
    ]
    try:
        result = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=FUZZ_SECONDS + 120
        )
        (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
        summary = result.stdout.rfind("=== FAILURES ===")
        report = result.stdout[max(summary, 0) :][-12000:] + result.stderr[-3000:]
        assert result.returncode == 0, report
        assert "Selected: " in result.stdout and "Tested: " in result.stdout
        selected = result.stdout.split("Selected: ")[1].split("/")[0]
        tested = result.stdout.split("Tested: ")[1].split()[0]
        assert selected == tested, report  # every operation was exercised
        assert "Traceback" not in server.output(), server.output()
    finally:
        assert server.stop() == 0, server.output()


# What earlier runs found, kept fixed (one request each, on the shared server).


def test_found_405_lists_every_method_of_the_path(server: Server) -> None:
    for path, allowed in (("/train", "GET, POST"), ("/train/x", "DELETE, GET")):
        answer = httpx.request("PUT", server.url + path, timeout=30)
        assert answer.status_code == 405 and answer.headers["allow"] == allowed


def test_found_booleans_are_not_numbers(server: Server) -> None:
    layer = {"weights": [[0.0]], "bias": [False], "activation": "sigmoid"}
    answer = server.post("/backprop", json={"x": [0.0], "label": 0, "weights": {"layers": [layer]}})
    assert answer.status_code == 422 and "bias" in answer.text
    answer = server.post("/train", headers=server.auth, json={"learning_rate": True})
    assert answer.status_code == 422 and "learning_rate" in answer.text


def test_found_v2_parameters_must_be_scalars(server: Server) -> None:
    tensor = {"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [5.1, 3.5]}
    body = {"inputs": [{**tensor, "parameters": {"x": {}}}]}
    answer = server.post("/v2/models/iris-net/infer", json=body)
    assert answer.status_code == 400 and "string, number or boolean" in answer.json()["error"]


def test_found_dot_traces_are_documented(server: Server) -> None:
    spec = server.get("/openapi.json").json()["paths"]["/backprop"]
    for method in ("get", "post"):
        assert "text/vnd.graphviz" in spec[method]["responses"]["200"]["content"]


def test_the_epoch_cap_is_enforced_and_stated(tmp_path: Path, seed_store: Path) -> None:
    store = tmp_path / "models"
    shutil.copytree(seed_store, store)
    server = start_server(store, tmp_path, env={"BACKPROP_MAX_TRAIN_EPOCHS": "40"})
    try:
        spec = server.get("/openapi.json").json()["components"]["schemas"]["TrainRequest"]
        assert {"type": "integer", "maximum": 40, "minimum": 1} in spec["properties"]["max_epochs"][
            "anyOf"
        ]
        over = server.post("/train", headers=server.auth, json={"max_epochs": 41})
        assert over.status_code == 422 and "max_epochs" in over.text and "40" in over.text
        job = server.post("/train?wait=true", headers=server.auth, json={"activate": False})
        assert job.status_code == 201 and job.json()["config"]["max_epochs"] == 40
    finally:
        assert server.stop() == 0, server.output()
