"""The Open Inference Protocol over gRPC, against a live server, with the real tritonclient.

The server's own generated stubs are never imported here: tritonclient registers the
same ``inference.*`` messages (from its copy of the protocol) in the process' protobuf
pool, and its stubs are what a user would call the server with anyway.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import orjson
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

from .server import Server, free_port, start_server

MODEL = "iris-net"
MAX_ROWS = 100
MAX_MESSAGE = 64 * 1024
ROWS = np.array([[5.1, 3.5], [6.7, 3.0], [4.9, 3.1], [6.3, 2.5]])  # the default model's features


class GrpcServer:
    """A live server with gRPC on a free port of its own."""

    def __init__(self, http: Server, port: int) -> None:
        self.http = http
        self.target = f"127.0.0.1:{port}"

    def client(self) -> triton.InferenceServerClient:
        return triton.InferenceServerClient(self.target)

    def stub(self) -> Any:
        """Raw stubs on a fresh channel (a new connection)."""
        return pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(self.target))

    def health(self, service: str = "") -> Any:
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def start_grpc_server(store: Path, log_dir: Path, **kwargs: Any) -> GrpcServer:
    env = kwargs.pop("env", {})
    port = free_port()
    server = start_server(store, log_dir, env={"BACKPROP_GRPC_PORT": str(port), **env}, **kwargs)
    return GrpcServer(server, port)


@pytest.fixture(scope="module")
def served(seed_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    """One gRPC server for the read-only tests: small row and message limits."""
    import shutil

    store = tmp_path_factory.mktemp("grpc") / "models"
    shutil.copytree(seed_store, store)
    running = start_grpc_server(
        store,
        tmp_path_factory.mktemp("logs"),
        env={
            "BACKPROP_MAX_BATCH_ROWS": str(MAX_ROWS),
            "BACKPROP_GRPC_MAX_MESSAGE_BYTES": str(MAX_MESSAGE),
        },
    )
    yield running
    assert running.http.stop() == 0, running.http.output()


def predict(server: Server, X: np.ndarray, version: str | None = None) -> dict[str, Any]:
    params = {"version": version} if version else {}
    answer = server.post("/predict", json={"instances": X.tolist()}, params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def infer_input(X: np.ndarray, datatype: str = "FP32", name: str = "features") -> Any:
    tensor = triton.InferInput(name, list(X.shape), datatype)
    tensor.set_data_from_numpy(X)
    return tensor


def check_matches_predict(served: GrpcServer, X: np.ndarray, proba: Any, labels: Any) -> None:
    """Probabilities are /predict's as FP32, labels /predict's, for the rows as sent."""
    rows = predict(served.http, X)["predictions"]
    classes = list(rows[0]["probabilities"])
    expected = np.array([[row["probabilities"][c] for c in classes] for row in rows])
    assert proba.dtype == np.float32 and proba.shape == (len(X), len(classes))
    np.testing.assert_array_equal(proba, expected.astype(np.float32))
    assert [label.decode() if isinstance(label, bytes) else label for label in labels] == [
        row["label"] for row in rows
    ]


def test_live_ready_and_metadata_are_the_rest_ones(served: GrpcServer) -> None:
    client = served.client()
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL)
    version = served.http.get("/model").json()["version"]
    assert client.is_model_ready(MODEL, version)

    server_meta = client.get_server_metadata(as_json=True)
    rest = served.http.get("/v2").json()
    assert server_meta == rest

    meta = client.get_model_metadata(MODEL, as_json=True)
    rest = served.http.get(f"/v2/models/{MODEL}").json()
    assert meta["name"] == rest["name"] == MODEL and meta["versions"] == rest["versions"]
    assert meta["platform"] == rest["platform"]
    for side in ("inputs", "outputs"):  # protobuf's JSON writes int64 shapes as strings
        assert [{**t, "shape": [int(d) for d in t["shape"]]} for t in meta[side]] == rest[side]
    versioned = client.get_model_metadata(MODEL, version, as_json=True)
    assert versioned["inputs"] == meta["inputs"]


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_with_raw_contents_equals_predict(served: GrpcServer, datatype: str) -> None:
    dtype = np.float32 if datatype == "FP32" else np.float64
    X = ROWS.astype(dtype)
    result = served.client().infer(MODEL, [infer_input(X, datatype)], request_id="rows-1")
    response = result.get_response()
    assert response.id == "rows-1" and response.model_name == MODEL
    assert len(response.raw_output_contents) == 2  # tritonclient's default: raw, as Triton
    check_matches_predict(
        served, X.astype(np.float64), result.as_numpy("probabilities"), result.as_numpy("label")
    )


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_with_typed_contents_equals_predict(served: GrpcServer, datatype: str) -> None:
    dtype = np.float32 if datatype == "FP32" else np.float64
    X = ROWS.astype(dtype)
    request = pb.ModelInferRequest(model_name=MODEL, id="typed")
    tensor = request.inputs.add(name="features", datatype=datatype, shape=list(X.shape))
    field = "fp32_contents" if datatype == "FP32" else "fp64_contents"
    getattr(tensor.contents, field).extend(X.ravel().tolist())
    response = served.stub().ModelInfer(request, timeout=10)
    assert not response.raw_output_contents  # typed in, typed out
    proba, label = response.outputs
    assert (proba.name, proba.datatype, list(proba.shape)) == ("probabilities", "FP32", [4, 2])
    assert (label.name, label.datatype, list(label.shape)) == ("label", "BYTES", [4])
    values = np.array(proba.contents.fp32_contents, dtype=np.float32).reshape(4, 2)
    check_matches_predict(served, X.astype(np.float64), values, label.contents.bytes_contents)


def test_one_requested_output_and_a_stored_version(served: GrpcServer) -> None:
    version = served.http.get("/model").json()["version"]
    result = served.client().infer(
        MODEL,
        [infer_input(ROWS, "FP64")],
        model_version=version,
        outputs=[triton.InferRequestedOutput("label")],
    )
    response = result.get_response()
    assert response.model_version == version and [o.name for o in response.outputs] == ["label"]
    assert [v.decode() for v in result.as_numpy("label")] == [
        p["label"] for p in predict(served.http, ROWS, version)["predictions"]
    ]


def test_request_id_metadata_metrics_and_access_line(served: GrpcServer) -> None:
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="features", datatype="FP64", shape=[1, 2])
    request.raw_input_contents.append(np.array([5.0, 3.0]).tobytes())
    _, call = served.stub().ModelInfer.with_call(
        request, metadata=(("x-request-id", "grpc-trace-42"),), timeout=10
    )
    assert ("x-request-id", "grpc-trace-42") in tuple(call.trailing_metadata())
    _, call = served.stub().ServerLive.with_call(pb.ServerLiveRequest(), timeout=10)
    made = dict(call.trailing_metadata())["x-request-id"]
    assert len(made) == 32  # a fresh id when none (or a malformed one) is sent
    with pytest.raises(grpc.RpcError) as caught:  # an error carries it too
        served.stub().ModelInfer(
            pb.ModelInferRequest(model_name="other"),
            metadata=(("x-request-id", "bad-1"),),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert ("x-request-id", "bad-1") in tuple(caught.value.trailing_metadata())
    log = served.http.wait_for_log("id=grpc-trace-42")
    assert "GRPC /inference.GRPCInferenceService/ModelInfer OK" in log
    assert "GRPC /inference.GRPCInferenceService/ServerLive OK" in log
    scrape = served.http.get("/metrics").text
    route = 'route="/inference.GRPCInferenceService/ModelInfer"'
    counted = [
        line
        for line in scrape.splitlines()
        if line.startswith("backprop_http_requests_total{") and route in line
    ]
    assert any('method="GRPC"' in line and 'status="OK"' in line for line in counted), [
        line for line in scrape.splitlines() if "GRPC" in line
    ]
    assert f'backprop_http_request_duration_seconds_count{{method="GRPC",{route}}}' in scrape


def test_methods_not_offered_are_unimplemented_with_the_request_id(served: GrpcServer) -> None:
    """Triton's other methods, streaming ones too, and unknown ones: UNIMPLEMENTED, with
    the call's id in the trailers, an access line and a count, as every other call."""
    stub = served.stub()
    request = pb.ModelInferRequest(model_name=MODEL)
    tagged = (("x-request-id", "stream-1"),)
    calls = {
        "stream-1": lambda: list(stub.ModelStreamInfer(iter([request]), metadata=tagged)),
        "index-1": lambda: stub.RepositoryIndex(
            pb.RepositoryIndexRequest(), metadata=(("x-request-id", "index-1"),), timeout=10
        ),
        "nope-1": lambda: grpc.insecure_channel(served.target).unary_unary("/no.Such/Method")(
            b"", metadata=(("x-request-id", "nope-1"),), timeout=10
        ),
    }
    for rid, call in calls.items():
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, rid
        assert ("x-request-id", rid) in tuple(caught.value.trailing_metadata()), rid
        assert "is not a method of this server" in caught.value.details()
    log = served.http.wait_for_log("id=nope-1")
    assert "GRPC /inference.GRPCInferenceService/ModelStreamInfer UNIMPLEMENTED" in log
    assert "GRPC /no.Such/Method UNIMPLEMENTED" in log
    scrape = served.http.get("/metrics").text
    assert (
        'backprop_http_requests_total{method="GRPC",route="unmatched",status="UNIMPLEMENTED"} 3.0'
        in scrape
    ), [line for line in scrape.splitlines() if "unmatched" in line]
    assert served.client().is_server_live()  # the server is none the worse


def raw_request(X: np.ndarray, datatype: str, **fields: Any) -> tuple[Any, bytes, int]:
    """The same request as a gRPC message and as a REST binary body (and its JSON length)."""
    name = fields.get("name", "features")
    shape = fields.get("shape", list(X.shape))
    blob = X.tobytes()
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name=name, datatype=datatype, shape=shape)
    request.raw_input_contents.append(blob)
    outputs = fields.get("outputs", [])
    for output in outputs:
        request.outputs.add(name=output)
    parameters = fields.get("parameters", {})
    for key, value in parameters.items():
        kind = "string_param" if isinstance(value, str) else "int64_param"
        setattr(request.parameters[key], kind, value)
    tensor = {
        "name": name,
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": len(blob)},
    }
    payload = {"inputs": [tensor], "outputs": [{"name": o} for o in outputs]}
    header = orjson.dumps(payload | ({"parameters": parameters} if parameters else {}))
    return request, header + blob, len(header)


BAD_TENSORS = {
    "three features": (np.zeros((2, 3), np.float32), "FP32", {}),
    "integer datatype": (np.zeros((2, 2), np.int32), "INT32", {}),
    "unknown input": (np.zeros((2, 2), np.float32), "FP32", {"name": "x"}),
    "NaN": (np.array([[1, 2], [np.nan, 1]], np.float32), "FP32", {}),
    "infinity": (np.array([[np.inf, 1]]), "FP64", {}),
    "overflowing rows": (np.array([[1e308, 1e308]]), "FP64", {}),
    "too many rows": (np.zeros((MAX_ROWS + 1, 2)), "FP64", {}),
    "no rows": (np.zeros((0, 2)), "FP64", {}),
    "unknown output": (np.zeros((1, 2)), "FP64", {"outputs": ["logits"]}),
    "output asked twice": (np.zeros((1, 2)), "FP64", {"outputs": ["label", "label"]}),
    "classification asked by the request": (
        np.zeros((1, 2)),
        "FP64",
        {"parameters": {"classification": 2}},
    ),
    "shared memory named by the request": (
        np.zeros((1, 2)),
        "FP64",
        {"parameters": {"shared_memory_region": "region"}},
    ),
}


@pytest.mark.parametrize("case", list(BAD_TENSORS))
def test_a_bad_tensor_is_invalid_argument_worded_as_rest(served: GrpcServer, case: str) -> None:
    X, datatype, fields = BAD_TENSORS[case]
    request, body, length = raw_request(X, datatype, **fields)
    with pytest.raises(grpc.RpcError) as caught:
        served.stub().ModelInfer(request, timeout=10)
    rest = served.http.post(
        f"/v2/models/{MODEL}/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(length)},
    )
    assert rest.status_code == 400, rest.text
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == rest.json()["error"]


def typed_request(datatype: str, shape: list[int], **contents: list[Any]) -> Any:
    request = pb.ModelInferRequest(model_name=MODEL)
    tensor = request.inputs.add(name="features", datatype=datatype, shape=shape)
    for field, values in contents.items():
        getattr(tensor.contents, field).extend(values)
    return request


def _two_inputs() -> Any:
    request = typed_request("FP64", [1, 2], fp64_contents=[1.0, 2.0])
    request.inputs.add(name="features", datatype="FP64", shape=[1, 2])
    return request


def _raw_and_typed() -> Any:
    request = typed_request("FP64", [1, 2], fp64_contents=[1.0, 2.0])
    request.raw_input_contents.append(np.zeros(2).tobytes())
    return request


def _raw_for_two() -> Any:
    request = typed_request("FP64", [1, 2])
    request.raw_input_contents.extend([np.zeros(2).tobytes()] * 2)
    return request


def _short_raw() -> Any:
    request = typed_request("FP32", [2, 2])
    request.raw_input_contents.append(np.zeros(3, np.float32).tobytes())
    return request


GRPC_ONLY = {
    "typed count": (
        lambda: typed_request("FP32", [2, 2], fp32_contents=[1, 2, 3]),
        "input 'features' has shape [2, 2] (4 values) but fp32_contents holds 3",
    ),
    "typed field of another datatype": (
        lambda: typed_request("FP32", [1, 2], fp64_contents=[1, 2]),
        "input 'features' has datatype FP32 but its values are in fp64_contents",
    ),
    "typed field beside the right one": (
        lambda: typed_request("FP64", [1, 2], fp64_contents=[1, 2], fp32_contents=[1, 2]),
        "input 'features' has datatype FP64 but its values are also in fp32_contents; "
        "FP64 values go in fp64_contents only",
    ),
    "integers beside FP32 values": (
        lambda: typed_request("FP32", [1, 2], fp32_contents=[1, 2], int_contents=[1, 2]),
        "its values are also in int_contents",
    ),
    "bytes beside FP32 values": (
        lambda: typed_request("FP32", [1, 2], fp32_contents=[1, 2], bytes_contents=[b"1"]),
        "its values are also in bytes_contents",
    ),
    "typed NaN": (
        lambda: typed_request("FP64", [1, 2], fp64_contents=[1.0, float("nan")]),
        "not a finite FP64 number",
    ),
    "raw byte count": (_short_raw, "input 'features' has 12 bytes in raw_input_contents"),
    "two inputs": (_two_inputs, '"inputs" must be a list of exactly one tensor'),
    "raw and typed": (_raw_and_typed, "gives both contents and raw_input_contents"),
    "raw entries for two": (_raw_for_two, "raw_input_contents holds 2 tensors"),
    "no inputs": (lambda: pb.ModelInferRequest(model_name=MODEL), "exactly one tensor"),
}


@pytest.mark.parametrize("case", list(GRPC_ONLY))
def test_grpc_only_mistakes_are_invalid_argument(served: GrpcServer, case: str) -> None:
    make, words = GRPC_ONLY[case]
    with pytest.raises(grpc.RpcError) as caught:
        served.stub().ModelInfer(make(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in caught.value.details()


def test_extensions_not_offered_are_refused(served: GrpcServer) -> None:
    asked = triton.InferRequestedOutput("label", class_count=1)  # the classification extension
    with pytest.raises(InferenceServerException) as caught:
        served.client().infer(MODEL, [infer_input(ROWS, "FP64")], outputs=[asked])
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "classification" in caught.value.message()


@pytest.mark.parametrize(
    ("name", "version"),
    [("other-net", ""), ("", ""), (MODEL, "v-never-stored"), (MODEL, "../etc")],
)
def test_unknown_model_or_version_is_not_found(served: GrpcServer, name: str, version: str) -> None:
    stub = served.stub()
    request = typed_request("FP64", [1, 2], fp64_contents=[5.0, 3.0])
    request.model_name, request.model_version = name, version
    calls = [
        lambda: stub.ModelInfer(request, timeout=10),
        lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name=name, version=version), timeout=10),
        lambda: stub.ModelReady(pb.ModelReadyRequest(name=name, version=version), timeout=10),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value.details()
        assert "unknown" in caught.value.details() or "no model name" in caught.value.details()


@pytest.mark.parametrize(
    "method",
    ["/inference.GRPCInferenceService/ModelInfer", "/grpc.health.v1.Health/Check"],
)
def test_a_malformed_message_is_invalid_argument(served: GrpcServer, method: str) -> None:
    with grpc.insecure_channel(served.target) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(method)(b"\xff\xff\xff\x0f", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a valid" in caught.value.details()


def test_settings_empty_grpc_port_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import Settings

    monkeypatch.setenv("BACKPROP_GRPC_PORT", "")
    assert Settings().grpc_port == 0
    monkeypatch.setenv("BACKPROP_GRPC_PORT", "9001")
    assert Settings().grpc_port == 9001


def test_a_message_over_the_limit_is_refused(served: GrpcServer) -> None:
    X = np.zeros((MAX_MESSAGE // 16 + 64, 2))  # more bytes than the limit
    with pytest.raises(InferenceServerException) as caught:
        served.client().infer(MODEL, [infer_input(X, "FP64")])
    assert caught.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert served.client().is_server_live()  # and the server goes on


def test_not_serving_and_unavailable_until_a_model_is_loaded(tmp_path: Path) -> None:
    running = start_grpc_server(
        tmp_path / "empty", tmp_path, env={"BACKPROP_TRAIN_ON_EMPTY": "false"}, ready=False
    )
    try:
        assert running.health() == health_pb2.HealthCheckResponse.NOT_SERVING
        assert running.health("inference.GRPCInferenceService") == (
            health_pb2.HealthCheckResponse.NOT_SERVING
        )
        with pytest.raises(grpc.RpcError) as caught:
            running.health("no.such.Service")
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        client = running.client()
        assert client.is_server_live() and not client.is_server_ready()
        assert not client.is_model_ready(MODEL)
        for call in (
            lambda: client.infer(MODEL, [infer_input(ROWS, "FP64")]),
            lambda: client.get_model_metadata(MODEL),
        ):
            with pytest.raises(InferenceServerException) as caught_triton:
                call()
            assert caught_triton.value.status() == "StatusCode.UNAVAILABLE"
            assert "no active version" in caught_triton.value.message()

        job = running.http.post(
            "/train",
            params={"wait": "true"},
            headers=running.http.auth,
            json={"max_epochs": 20},
        )
        assert job.status_code == 201, job.text
        deadline = time.monotonic() + 10
        while running.health() != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline, running.http.output()
            time.sleep(0.05)
        assert client.is_server_ready() and client.is_model_ready(MODEL)
        assert client.infer(MODEL, [infer_input(ROWS, "FP64")]).as_numpy("label").shape == (4,)
    finally:
        assert running.http.stop() == 0, running.http.output()


def infer_version(target: str) -> str:
    """One call on a fresh channel (a new connection: any worker may take it)."""
    request = typed_request("FP64", [1, 2], fp64_contents=[5.0, 3.0])
    with grpc.insecure_channel(target) as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
    return str(response.model_version)


def test_two_workers_answer_fresh_channels_and_follow_an_activation(
    fresh_store: Path, tmp_path: Path
) -> None:
    running = start_grpc_server(fresh_store, tmp_path, workers=2)
    server = running.http
    try:
        first = server.get("/model").json()["version"]
        assert {infer_version(running.target) for _ in range(60)} == {first}
        job = server.post(
            "/train",
            params={"wait": "true"},
            headers=server.auth,
            json={"activate": False, "max_epochs": 50},
        )
        assert job.status_code == 201, job.text
        second = job.json()["result"]["model_version"]
        assert server.post(f"/models/{second}/activate", headers=server.auth).status_code == 200
        switched = time.monotonic()
        seen: list[tuple[float, str]] = []
        while time.monotonic() - switched < 1.5:  # the bound of HTTP's test_workers
            seen.append((time.monotonic() - switched, infer_version(running.target)))
        late_old = [t for t, version in seen if version != second and t >= 1.0]
        assert not late_old, f"a worker still served {first} over gRPC {late_old} s after"
        assert {infer_version(running.target) for _ in range(40)} == {second}
        assert server.log.read_text().count("gRPC (Open Inference Protocol) listening on") == 2
    finally:
        assert server.stop() == 0, server.output()


def test_sigterm_lets_in_flight_calls_finish_and_exits_0(fresh_store: Path, tmp_path: Path) -> None:
    running = start_grpc_server(fresh_store, tmp_path)
    X = np.random.default_rng(0).normal(5, 1, (MAX_ROWS * 100, 2))  # slower calls: 10,000 rows
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="features", datatype="FP64", shape=list(X.shape))
    request.raw_input_contents.append(X.tobytes())
    outcomes: list[tuple[float, str, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        with grpc.insecure_channel(running.target) as channel:
            call = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    response = call(request, timeout=20)
                    assert len(response.raw_output_contents[0]) == len(X) * 2 * 4
                    outcomes.append((sent, "OK", ""))
                except grpc.RpcError as exc:
                    outcomes.append((sent, exc.code().name, exc.details() or ""))
                    if exc.code() == grpc.StatusCode.UNAVAILABLE:
                        return

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    while len(outcomes) < 40:
        time.sleep(0.01)
    signalled = time.monotonic()
    code = running.http.stop(signal.SIGTERM)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert code == 0, running.http.output()
    before = [kind for sent, kind, _ in outcomes if sent < signalled]
    after = [kind for sent, kind, _ in outcomes if sent >= signalled]
    # Every call in flight at SIGTERM was answered, and the server went on answering
    # while it shut down; then calls found no server (UNAVAILABLE, refused). A call
    # that reaches gRPC's core in the very instant it stops, before a handler takes
    # it, is CANCELLED by grpcio (see docs/API.md): allowed, after the signal only.
    assert before and set(before) == {"OK"}, before
    assert "OK" in after, outcomes
    assert set(after) <= {"OK", "UNAVAILABLE", "CANCELLED"}, outcomes
    assert "gRPC server on" in running.http.output()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_grpc_port_already_held_stops_the_start(tmp_path: Path, workers: int) -> None:
    """Port reuse must not silently join another server: the start fails, saying why."""
    import os
    import socket
    import subprocess
    import sys

    from .server import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env |= {
            "BACKPROP_MODEL_DIR": str(tmp_path / "models"),
            "BACKPROP_API_TOKEN": "t",
            "BACKPROP_TRAIN_ON_EMPTY": "false",
            "BACKPROP_GRPC_PORT": str(port),
            "PYTHONPATH": str(ROOT),
        }
        argv = [sys.executable, "-m", "service", "--port", str(free_port())]
        done = subprocess.run(
            [*argv, "--workers", str(workers)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert str(port) in done.stdout + done.stderr
