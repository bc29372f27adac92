"""Every V2 error, by raw request: ``{"error": "..."}`` with 400, 404, 413, 415 or 503."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from .server import Server, start_server

INFER = "/v2/models/iris-net/infer"


def tensor(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "features", "shape": [1, 2], "datatype": "FP32"}
    base["data"] = [5.1, 3.5]
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


def request(**fields: Any) -> bytes:
    return orjson.dumps({"inputs": [tensor()], **fields})


def assert_v2_error(response: httpx.Response, status: int, needle: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    assert needle in body["error"], body["error"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"{}", "exactly one tensor"),
        (orjson.dumps({"inputs": []}), "exactly one tensor"),
        (orjson.dumps({"inputs": [tensor(), tensor()]}), "exactly one tensor"),
        (orjson.dumps({"inputs": ["features"]}), "exactly one tensor"),
        (orjson.dumps({"inputs": [tensor(name="input0")]}), "unknown input 'input0'"),
        (orjson.dumps({"inputs": [tensor(datatype="INT32")]}), "FP32 or FP64"),
        (orjson.dumps({"inputs": [tensor(datatype="BYTES")]}), "FP32 or FP64"),
        (orjson.dumps({"inputs": [tensor(datatype="fp32")]}), "FP32 or FP64"),
        (orjson.dumps({"inputs": [tensor(datatype=None)]}), "FP32 or FP64"),
        (orjson.dumps({"inputs": [tensor(shape=[2])]}), "expected [N, 2]"),
        (orjson.dumps({"inputs": [tensor(shape=[1, 3])]}), "sepal_length"),
        (orjson.dumps({"inputs": [tensor(shape=[1, 2, 1])]}), "expected [N, 2]"),
        (orjson.dumps({"inputs": [tensor(shape=[-1, 2])]}), "-1 rows"),
        (orjson.dumps({"inputs": [tensor(shape="1,2")]}), "expected [N, 2]"),
        (orjson.dumps({"inputs": [tensor(shape=[1, True])]}), "expected [N, 2]"),
        (orjson.dumps({"inputs": [tensor(shape=None)]}), "expected [N, 2]"),
        (orjson.dumps({"inputs": [tensor(shape=[0, 2], data=[])]}), "1 to 10000"),
        (orjson.dumps({"inputs": [tensor(shape=[10_001, 2], data=[])]}), "1 to 10000"),
        (orjson.dumps({"inputs": [tensor(shape=[2, 2])]}), "data holds 2"),
        (orjson.dumps({"inputs": [tensor(data=[5.1, 3.5, 1.0])]}), "data holds 3"),
        (orjson.dumps({"inputs": [tensor(shape=[2, 2], data=[[5, 3], [5]])]}), "2 rows of 2"),
        (
            orjson.dumps({"inputs": [tensor(data=[[5, [3]]])]}),
            "number",
        ),
        (orjson.dumps({"inputs": [tensor(data=[5.1, "3.5"])]}), "'3.5' at element 1"),
        (orjson.dumps({"inputs": [tensor(data=[5.1, True])]}), "True at element 1"),
        (orjson.dumps({"inputs": [tensor(data=[5.1, None])]}), "None at element 1"),
        (orjson.dumps({"inputs": [tensor(data=None)]}), '"data"'),
        (orjson.dumps({"inputs": [tensor(data="5.1,3.5")]}), '"data"'),
        (
            b'{"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", '
            b'"data": [5.1, NaN]}]}',
            "NaN and Infinity are not JSON numbers",
        ),
        (
            b'{"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP64", '
            b'"data": [5.1, 1e999]}]}',
            "beyond a double's range",
        ),
        (orjson.dumps({"inputs": [tensor(data=[5.1, 1e39])]}), "not a finite FP32"),
        # Half an ulp past FP32's largest value, which rounds to infinity: refused alike
        # by the one-row path and the array path.
        (
            orjson.dumps({"inputs": [tensor(data=[5.1, 3.4028235677973366e38])]}),
            "not a finite FP32",
        ),
        (
            orjson.dumps({"inputs": [tensor(shape=[2, 2], data=[5.1, 3.5, 5.1, -3.4028236e38])]}),
            "not a finite FP32",
        ),
        (
            b'{"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", '
            b'"data": [5, 1000000000000000000000000000000000000000]}]}',
            "not a finite FP32",
        ),
        (request(id=42), '"id" must be a string'),
        (request(parameters=[1]), '"parameters" of the request'),
        (request(parameters={"binary_data_output": "yes"}), "binary_data_output"),
        (request(outputs=[{"name": "score"}]), "unknown output 'score'"),
        (request(outputs=["label"]), '"outputs" must be a list of objects'),
        (request(outputs={"name": "label"}), '"outputs" must be a list of objects'),
        (request(outputs=[{"name": "label"}, {"name": "label"}]), "asked for twice"),
        (
            request(outputs=[{"name": "label", "parameters": {"binary_data": 1}}]),
            '"binary_data" of output',
        ),
        (
            request(outputs=[{"name": "label", "parameters": {"classification": 2}}]),
            "classification",
        ),
        (
            request(outputs=[{"name": "label", "parameters": {"shared_memory_region": "r"}}]),
            "shared_memory_region",
        ),
        (
            orjson.dumps({"inputs": [tensor(parameters={"shared_memory_region": "r"}, data=None)]}),
            "shared_memory_region",
        ),
    ],
)
def test_bad_json_requests_are_400_naming_the_problem(
    server: Server, body: bytes, needle: str
) -> None:
    response = server.post(INFER, content=body, headers={"content-type": "application/json"})
    assert_v2_error(response, 400, needle)


def binary_request(X: np.ndarray, size: Any = None, **extra: Any) -> tuple[bytes, str]:
    """A body with X as binary data after the JSON, and its Inference-Header-Content-Length."""
    params = {"binary_data_size": X.nbytes if size is None else size}
    fields = {"shape": list(X.shape), "data": None, "parameters": params, **extra}
    header = orjson.dumps({"inputs": [tensor(**fields)]})
    return header + X.tobytes(), str(len(header))


ROW = np.array([[5.1, 3.5]], dtype="<f4")
BINARY_ROW, BINARY_ROW_SPLIT = binary_request(ROW)


@pytest.mark.parametrize(
    ("wire", "needle"),
    [
        (binary_request(np.array([[5.1, np.nan]], dtype="<f4")), "not a finite FP32"),
        (binary_request(np.array([[np.inf, 3.5]], dtype="<f4")), "row 0"),
        (binary_request(ROW, size=12), "takes 8 bytes"),
        (binary_request(ROW, size=-8), "binary_data_size -8"),
        (binary_request(ROW, size="8"), "binary_data_size '8'"),
        (binary_request(ROW, data=[5.1, 3.5]), "both"),
        (binary_request(ROW.astype("<f8"), datatype="FP32"), "takes 8 bytes"),
        ((BINARY_ROW[:-3], BINARY_ROW_SPLIT), "5 bytes follow"),
        ((BINARY_ROW + b"\0", BINARY_ROW_SPLIT), "9 bytes follow"),
        ((request() + b"\0\0\0\0", str(len(request()))), "no input has binary_data_size"),
        ((request(), "10000"), "the body has"),
        ((request(), "-1"), "must be a byte count"),
        ((request(), "twelve"), "must be a byte count"),
        # what int() takes but a byte count is not written as
        ((BINARY_ROW, "+" + BINARY_ROW_SPLIT), "must be a byte count"),
        ((BINARY_ROW, BINARY_ROW_SPLIT[0] + "_" + BINARY_ROW_SPLIT[1:]), "must be a byte count"),
    ],
)
def test_bad_binary_requests_are_400(server: Server, wire: tuple[bytes, str], needle: str) -> None:
    body, split = wire
    response = server.post(INFER, content=body, headers={"Inference-Header-Content-Length": split})
    assert_v2_error(response, 400, needle)


def test_binary_data_without_the_header_length_is_400(server: Server) -> None:
    response = server.post(INFER, content=BINARY_ROW)
    assert_v2_error(response, 400, "not valid JSON")


@pytest.mark.parametrize(
    ("method", "path", "needle"),
    [
        ("POST", "/v2/models/other-model/infer", "unknown model 'other-model'"),
        ("POST", "/v2/models/other-model/versions/v1/infer", "unknown model"),
        ("POST", "/v2/models/iris-net/versions/v-none/infer", "unknown version 'v-none'"),
        ("POST", "/v2/models/iris-net/versions/..bad/infer", "unknown version"),
        ("GET", "/v2/models/other-model", "unknown model"),
        ("GET", "/v2/models/other-model/ready", "unknown model"),
        ("GET", "/v2/models/iris-net/versions/v-none", "unknown version"),
        ("GET", "/v2/models/iris-net/versions/v-none/ready", "unknown version"),
        ("GET", "/v2/no/such/path", "Not Found"),
        ("POST", "/v2/models/iris-net/infer/more", "Not Found"),
    ],
)
def test_unknown_models_versions_and_paths_are_404(
    server: Server, method: str, path: str, needle: str
) -> None:
    response = httpx.request(method, server.url + path, content=request(), timeout=30)
    assert_v2_error(response, 404, needle)


def test_wrong_method_is_405_in_the_v2_shape(server: Server) -> None:
    assert_v2_error(server.get(INFER), 405, "Method Not Allowed")
    assert_v2_error(server.post("/v2/models/iris-net"), 405, "Method Not Allowed")


def test_bodies_over_the_limit_are_413(server: Server) -> None:
    rows = 300_000
    big = orjson.dumps({"inputs": [tensor(shape=[rows, 2], data=[[5.1, 3.5]] * rows)]})
    assert len(big) > 2 * 1024 * 1024
    assert_v2_error(server.post(INFER, content=big), 413, "limit")

    def chunks() -> Iterator[bytes]:  # no Content-Length: read until the limit
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    assert_v2_error(server.post(INFER, content=chunks()), 413, "limit")
    bomb = gzip.compress(b" " * (3 * 1024 * 1024) + request())
    response = server.post(INFER, content=bomb, headers={"content-encoding": "gzip"})
    assert_v2_error(response, 413, "decoded request body")


def test_bad_content_encodings(server: Server) -> None:
    response = server.post(INFER, content=request(), headers={"content-encoding": "br"})
    assert_v2_error(response, 415, "'br' is not supported")
    assert "gzip" in response.headers["accept-encoding"]
    broken = server.post(INFER, content=b"not gzip", headers={"content-encoding": "gzip"})
    assert_v2_error(broken, 400, "cannot be decoded")
    cut = gzip.compress(request())[:-12]
    truncated = server.post(INFER, content=cut, headers={"content-encoding": "gzip"})
    assert_v2_error(truncated, 400, "truncated")


def test_not_ready_is_503_and_live_stays_200(tmp_path: Path) -> None:
    running = start_server(
        tmp_path / "models", tmp_path, env={"BACKPROP_TRAIN_ON_EMPTY": "false"}, ready=False
    )
    try:
        assert running.get("/v2/health/live").status_code == 200
        assert running.get("/v2").status_code == 200
        for path in ("/v2/health/ready", "/v2/models/iris-net", "/v2/models/iris-net/ready"):
            assert_v2_error(running.get(path), 503, "no active version")
        assert_v2_error(running.post(INFER, content=request()), 503, "no active version")
    finally:
        assert running.stop() == 0, running.output()


def test_a_version_that_fails_verification_is_503(seed_store: Path, tmp_path: Path) -> None:
    """A stored, non-active version whose weights were damaged is never served."""
    store = tmp_path / "models"
    shutil.copytree(seed_store, store)
    running = start_server(store, tmp_path)
    try:
        job = running.post(
            "/train?wait=true", json={"max_epochs": 20, "activate": False}, headers=running.auth
        )
        assert job.status_code == 201, job.text
        other = job.json()["result"]["model_version"]
        weights = next((store / other).glob("*.npz"))
        weights.write_bytes(weights.read_bytes()[:-10])
        path = f"/v2/models/iris-net/versions/{other}"
        assert_v2_error(running.post(path + "/infer", content=request()), 503, "verification")
        assert_v2_error(running.get(path + "/ready"), 503, "verification")
        assert_v2_error(running.get(path), 503, "verification")
        assert running.post(INFER, content=request()).status_code == 200
    finally:
        assert running.stop() == 0, running.output()


def test_finite_but_overflowing_rows_are_400_never_nan(server: Server) -> None:
    for datatype in ("FP64", "FP32"):
        huge = 1e308 if datatype == "FP64" else 3e38
        body = orjson.dumps({"inputs": [tensor(datatype=datatype, data=[huge, huge])]})
        response = httpx.post(server.url + INFER, content=body, timeout=10)
        if response.status_code == 200:  # it may well stay finite: then no null anywhere
            assert None not in response.json()["outputs"][0]["data"]
        else:
            assert_v2_error(response, 400, "too large")
    body = orjson.dumps({"inputs": [tensor(datatype="FP64", data=[1e308, 1e308])]})
    assert_v2_error(httpx.post(server.url + INFER, content=body, timeout=10), 400, "input row 0")
