"""The Open Inference Protocol (V2) with the real Triton HTTP client, and by hand."""

from __future__ import annotations

import asyncio
import shutil
import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from fastapi import FastAPI
from sklearn.datasets import load_iris
from tritonclient.utils import InferenceServerException

from service.app import ServiceApp, create_app
from service.settings import Settings

from .server import Server, start_server

MODEL = "iris-net"
IRIS_COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def iris_rows(features: list[str]) -> np.ndarray:
    """All 150 Iris rows, the model's features in its order, as FP32."""
    X = load_iris().data
    return X[:, [IRIS_COLUMNS.index(f) for f in features]].astype(np.float32)


def client_of(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


def predicted(server: Server, X: np.ndarray, version: str | None = None) -> dict[str, Any]:
    """/predict's labels and FP32 probabilities (columns in `classes` order) for X."""
    query = f"?version={version}" if version else ""
    response = server.post(f"/predict{query}", json={"instances": X.astype(np.float64).tolist()})
    assert response.status_code == 200, response.text
    meta = server.get(f"/models/{response.json()['model_version']}").json()
    rows = response.json()["predictions"]
    proba = [[row["probabilities"][c] for c in meta["classes"]] for row in rows]
    return {
        "version": response.json()["model_version"],
        "labels": [row["label"] for row in rows],
        "probabilities": np.array(proba, dtype=np.float64).astype(np.float32),
    }


def features_input(X: np.ndarray, binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("features", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X, binary_data=binary)
    return tensor


def test_tritonclient_health_and_metadata(server: Server) -> None:
    client = client_of(server)
    active = server.get("/model").json()
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, active["version"])
    assert not client.is_model_ready("another-model")
    assert not client.is_model_ready(MODEL, "v-no-such-version")
    meta = client.get_server_metadata()
    assert meta["name"] == "backprop-serve" and "binary_tensor_data" in meta["extensions"]
    assert isinstance(meta["version"], str)
    model = client.get_model_metadata(MODEL)
    assert model["name"] == MODEL and model["platform"] == "numpy"
    assert active["version"] in model["versions"]
    n_features, n_classes = len(active["features"]), len(active["classes"])
    assert model["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, n_features]}]
    assert model["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, n_classes]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ]
    assert client.get_model_metadata(MODEL, active["version"]) == model
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("another-model")
    assert unknown.value.status() == "404"
    client.close()


def test_tritonclient_infer_matches_predict_with_binary_and_json_tensors(server: Server) -> None:
    X = iris_rows(server.get("/model").json()["features"])
    expected = predicted(server, X)
    client = client_of(server)
    binary = client.infer(MODEL, [features_input(X)], request_id="iris-150")
    as_json = client.infer(
        MODEL,
        [features_input(X, binary=False)],
        outputs=[
            triton.InferRequestedOutput("probabilities", binary_data=False),
            triton.InferRequestedOutput("label", binary_data=False),
        ],
    )
    for result in (binary, as_json):
        answer = result.get_response()
        assert answer["model_name"] == MODEL and answer["model_version"] == expected["version"]
        probabilities = result.as_numpy("probabilities")
        assert probabilities.dtype == np.float32 and probabilities.shape == (150, 2)
        np.testing.assert_array_equal(probabilities, expected["probabilities"])
        labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label")]
        assert labels == expected["labels"]
    assert binary.get_response()["id"] == "iris-150"
    assert "data" not in binary.get_output("label")
    assert as_json.get_output("label")["data"] == expected["labels"]
    for i in (0, 60, 149, 0, 60):  # one row at a time, as most clients call: its own path
        one = client.infer(MODEL, [features_input(X[i : i + 1])])
        np.testing.assert_array_equal(
            one.as_numpy("probabilities")[0], expected["probabilities"][i]
        )
        assert one.as_numpy("label")[0].decode() == expected["labels"][i]
        assert "id" not in one.get_response()
    tagged = client.infer(MODEL, [features_input(X[60:61])], request_id="row-60")
    assert tagged.get_response()["id"] == "row-60"
    np.testing.assert_array_equal(
        tagged.as_numpy("probabilities")[0], expected["probabilities"][60]
    )
    client.close()


def test_tritonclient_compressed_requests_and_one_requested_output(server: Server) -> None:
    X = iris_rows(server.get("/model").json()["features"])[45:55]
    expected = predicted(server, X)
    client = client_of(server)
    for algorithm in ("gzip", "deflate"):
        result = client.infer(
            MODEL,
            [features_input(X)],
            outputs=[triton.InferRequestedOutput("label")],
            request_compression_algorithm=algorithm,
            response_compression_algorithm=algorithm,
        )
        assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]
        assert [v.decode() for v in result.as_numpy("label")] == expected["labels"]
    client.close()


@pytest.mark.parametrize("binary", [False, True])
def test_answers_are_compressed_when_the_client_asks(server: Server, binary: bool) -> None:
    X = iris_rows(server.get("/model").json()["features"])
    expected = predicted(server, X)
    client = client_of(server)
    for algorithm in ("gzip", "deflate"):  # tritonclient decodes what the server says
        result = client.infer(
            MODEL,
            [features_input(X, binary=binary)],
            outputs=[
                triton.InferRequestedOutput(n, binary_data=binary)
                for n in ("probabilities", "label")
            ],
            response_compression_algorithm=algorithm,
        )
        np.testing.assert_array_equal(result.as_numpy("probabilities"), expected["probabilities"])
        labels = result.as_numpy("label")
        assert [v.decode() if isinstance(v, bytes) else v for v in labels] == expected["labels"]
    client.close()
    body = orjson.dumps(
        {
            "inputs": [
                {"name": "features", "shape": list(X.shape), "datatype": "FP64", "data": X.tolist()}
            ]
        }
    )
    plain = httpx.post(
        server.url + f"/v2/models/{MODEL}/infer",
        content=body,
        headers={"Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in plain.headers
    for accept, coding in (
        ("gzip", "gzip"),
        ("br, deflate", "deflate"),
        ("gzip;q=0, *", "deflate"),
        ("gzip;q=0", None),
        ("br", None),
    ):
        with httpx.Client() as raw:  # httpx inflates gzip and deflate itself
            answer = raw.post(
                server.url + f"/v2/models/{MODEL}/infer",
                content=body,
                headers={"Accept-Encoding": accept},
            )
        assert answer.status_code == 200
        assert answer.headers.get("content-encoding") == coding, accept
        assert answer.content == plain.content, accept
    one_row = orjson.dumps(
        {"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP64", "data": [5, 3]}]}
    )
    small = httpx.post(
        server.url + f"/v2/models/{MODEL}/infer",
        content=one_row,
        headers={"Accept-Encoding": "gzip"},
    )
    assert "content-encoding" not in small.headers  # a few hundred bytes would only grow


def test_json_data_flat_nested_fp64_and_no_content_type(server: Server) -> None:
    X = iris_rows(server.get("/model").json()["features"])[:4]
    expected = predicted(server, X)
    flat = X.ravel().tolist()
    nested = X.tolist()
    fp64 = X.astype(np.float64).tolist()
    for datatype, data in (("FP32", flat), ("FP32", nested), ("FP64", fp64)):
        body = {
            "id": "rows",
            "inputs": [{"name": "features", "shape": [4, 2], "datatype": datatype, "data": data}],
            "outputs": [{"name": "label"}, {"name": "probabilities"}],
        }
        response = server.post(f"/v2/models/{MODEL}/infer", content=orjson.dumps(body))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        answer = response.json()
        assert answer["id"] == "rows" and answer["model_version"] == expected["version"]
        label, probabilities = answer["outputs"]
        assert label == {
            "name": "label",
            "datatype": "BYTES",
            "shape": [4],
            "data": expected["labels"],
        }
        assert probabilities["shape"] == [4, 2] and probabilities["datatype"] == "FP32"
        got = np.array(probabilities["data"], dtype=np.float32).reshape(4, 2)
        np.testing.assert_array_equal(got, expected["probabilities"])


@pytest.mark.parametrize("key", ["\\u0069d", "i\\u0064", "\\u0069\\u0064"])
def test_an_id_key_written_with_escapes_is_echoed_on_every_path(server: Server, key: str) -> None:
    """JSON may spell "id" with escapes: the fast paths must not take such a header as
    one without an id, on the first call or later ones."""
    infer = f"/v2/models/{MODEL}/infer"
    tensor = '"name":"features","datatype":"FP32","shape":[{n},2]'
    for n, data in ((1, "5.1,3.5"), (1, "6.7,3.1"), (2, "5.1,3.5,6.7,3.1"), (1, "5.0,3.4")):
        body = f'{{"{key}":"json-{n}","inputs":[{{{tensor.format(n=n)},"data":[{data}]}}]}}'
        answer = server.post(infer, content=body.encode())
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == f"json-{n}", body
    sized = '"parameters":{"binary_data_size":8}'
    head = f'{{"{key}":"bin","inputs":[{{{tensor.format(n=1)},{sized}}}]}}'.encode()
    for row in ((5.1, 3.5), (6.7, 3.1), (5.0, 3.4)):
        answer = server.post(
            infer,
            content=head + struct.pack("<2f", *row),
            headers={"Inference-Header-Content-Length": str(len(head))},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == "bin"


def test_binary_tensors_on_the_wire(server: Server) -> None:
    """The extension's byte layout, read without the Triton client."""
    X = iris_rows(server.get("/model").json()["features"])[98:102]
    expected = predicted(server, X)
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [4, 2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": X.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
            "outputs": [{"name": "probabilities"}, {"name": "label"}],
        }
    )
    response = server.post(
        f"/v2/models/{MODEL}/infer",
        content=header + X.astype("<f4").tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    split = int(response.headers["inference-header-content-length"])
    answer = orjson.loads(response.content[:split])
    sizes = [o["parameters"]["binary_data_size"] for o in answer["outputs"]]
    assert sizes[0] == 4 * 2 * 4 and split + sum(sizes) == len(response.content)
    tail = response.content[split:]
    probabilities = np.frombuffer(tail[: sizes[0]], dtype="<f4").reshape(4, 2)
    np.testing.assert_array_equal(probabilities, expected["probabilities"])
    labels, rest = [], tail[sizes[0] :]
    while rest:
        n = int.from_bytes(rest[:4], "little")
        labels.append(rest[4 : 4 + n].decode())
        rest = rest[4 + n :]
    assert labels == expected["labels"]


def test_openapi_documents_the_v2_paths(server: Server) -> None:
    paths = server.get("/openapi.json").json()["paths"]
    for path in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models",
        "/v2/models/{model_name}",
        "/v2/models/{model_name}/ready",
        "/v2/models/{model_name}/versions/{model_version}",
        "/v2/models/{model_name}/versions/{model_version}/ready",
    ):
        assert "get" in paths[path], path
    for path in (
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    ):
        post = paths[path]["post"]
        assert "application/json" in post["requestBody"]["content"]
        assert {"200", "400", "404", "503"} <= set(post["responses"])
    for path, item in paths.items():  # V2 answers 400, never FastAPI's 422: nor says it
        if path.startswith("/v2"):
            assert all("422" not in op["responses"] for op in item.values()), path
    assert "422" in paths["/predict"]["post"]["responses"]  # the native API keeps its 422


def test_configured_name_and_versioned_paths_serve_a_stored_version(
    seed_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "models"
    shutil.copytree(seed_store, store)
    running = start_server(store, tmp_path, env={"BACKPROP_MODEL_NAME": "flowers"})
    try:
        active = running.get("/model").json()
        assert active["name"] == "flowers"
        assert running.get("/v2/models").json() == {"models": ["flowers"]}
        assert running.get(f"/v2/models/{MODEL}").status_code == 404
        job = running.post(
            "/train?wait=true",
            json={
                "features": list(IRIS_COLUMNS),
                "target": "species",
                "optimizer": "adam",
                "max_epochs": 300,
                "activate": False,
            },
            headers=running.auth,
        )
        assert job.status_code == 201, job.text
        other = job.json()["result"]["model_version"]
        assert running.get("/model").json()["version"] == active["version"]

        meta = running.get(f"/v2/models/flowers/versions/{other}").json()
        assert meta["inputs"][0]["shape"] == [-1, 4]
        assert meta["outputs"][0]["shape"] == [-1, 3]
        assert set(meta["versions"]) == {active["version"], other}
        assert running.get(f"/v2/models/flowers/versions/{other}/ready").status_code == 200

        X = iris_rows(list(IRIS_COLUMNS))[::10]
        expected = predicted(running, X, version=other)
        client = client_of(running)
        result = client.infer("flowers", [features_input(X)], model_version=other, request_id="old")
        assert result.get_response()["model_version"] == other
        np.testing.assert_array_equal(result.as_numpy("probabilities"), expected["probabilities"])
        assert [v.decode() for v in result.as_numpy("label")] == expected["labels"]
        assert set(expected["labels"]) == {"setosa", "versicolor", "virginica"}
        active_meta = client.get_model_metadata("flowers")
        assert active_meta["inputs"][0]["shape"] == [-1, len(active["features"])]
        client.close()
    finally:
        assert running.stop() == 0, running.output()


def test_the_documented_infer_route_answers_like_the_fast_path(
    seed_store: Path, tmp_path: Path
) -> None:
    """With the ASGI fast path taken out, the FastAPI infer routes give the same answers."""
    shutil.copytree(seed_store, tmp_path / "models")
    app = create_app(Settings(model_dir=tmp_path / "models", api_token="t"))
    assert isinstance(app, ServiceApp)
    app.fast_path = False
    body = {"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP64", "data": [5, 3]}]}

    async def calls() -> None:
        async with app.router.lifespan_context(app), in_process(app) as client:
            version = (await client.get("/model")).json()["version"]
            for path in (
                f"/v2/models/{MODEL}/infer",
                f"/v2/models/{MODEL}/versions/{version}/infer",
            ):
                response = await client.post(path, content=orjson.dumps(body))
                assert response.status_code == 200, response.text
                assert response.json()["outputs"][1]["data"] == ["setosa"]
            bad = await client.post(f"/v2/models/{MODEL}/infer", content=b"{")
            assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]

    asyncio.run(calls())


def test_v2_request_validation_errors_are_400_not_422(tmp_path: Path) -> None:
    app = create_app(Settings(model_dir=tmp_path / "models", api_token="t"))

    @app.get("/v2/probe/{n}")
    async def probe(n: int) -> dict[str, int]:
        return {"n": n}

    @app.get("/probe/{n}")
    async def native_probe(n: int) -> dict[str, int]:
        return {"n": n}

    async def calls() -> None:
        async with in_process(app) as client:  # no lifespan: these routes need no model
            response = await client.get("/v2/probe/seven")
            assert response.status_code == 400
            assert set(response.json()) == {"error"} and "n" in response.json()["error"]
            assert (await client.get("/probe/seven")).status_code == 422
            assert (await client.get("/v2/probe/7")).json() == {"n": 7}

    asyncio.run(calls())


def in_process(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


@pytest.mark.parametrize("proba", [[0.25, 0.75], [0.5, 0.5], [0.2, 0.3, 0.5], [1e-40, 1.0]])
def test_the_one_row_response_is_the_array_response_byte_for_byte(proba: list[float]) -> None:
    from service.v2.response import encode_response, encode_row_response
    from service.v2.tensors import RequestedOutput

    classes = tuple("abc"[: len(proba)])
    kinds = [(p, lab) for p in (False, True) for lab in (False, True)]
    for p_binary, label_binary in kinds:
        for request_id in (None, "r-1"):
            for outputs in (
                (
                    RequestedOutput("probabilities", p_binary),
                    RequestedOutput("label", label_binary),
                ),
                (
                    RequestedOutput("label", label_binary),
                    RequestedOutput("probabilities", p_binary),
                ),
                (RequestedOutput("label", label_binary),),
                (RequestedOutput("probabilities", p_binary),),
            ):
                # twice each: the second answer comes from the reused JSON header
                for row in (proba, proba[::-1], proba):
                    expected = encode_response(
                        "m", "v", request_id, np.array([row]), classes, outputs
                    )
                    got = encode_row_response("m", "v", request_id, row, classes, outputs)
                    assert got == expected


@pytest.mark.parametrize(
    "classes",
    [
        ("a", "bb"),
        ("not-setosa", "setosa"),
        ("setosa", "versicolor", "virginica"),
        ('é "q"\\', "x\u0000y", ""),
    ],
)
def test_many_labels_are_the_names_of_the_best_classes(classes: tuple[str, ...]) -> None:
    from service.v2.response import encode_response
    from service.v2.tensors import RequestedOutput

    rng = np.random.default_rng(len(classes))
    for rows in (1, 2, 1000):
        proba = rng.dirichlet(np.ones(len(classes)), rows)
        answer, _ = encode_response(
            "m", "v", None, proba, classes, (RequestedOutput("label", False),)
        )
        data = orjson.loads(answer)["outputs"][0]["data"]
        assert data == [classes[k] for k in proba.argmax(axis=1)]
        assert b", " not in answer or len({len(orjson.dumps(c)) for c in classes}) > 1
        assert b" ]" not in answer and b"[ " not in answer  # padding only after commas


def test_a_repeated_binary_header_is_checked_once_and_its_values_every_time() -> None:
    from types import SimpleNamespace

    from service.errors import BadRequest
    from service.v2 import tensors

    model: Any = SimpleNamespace(features=("petal_length", "petal_width"))
    for datatype, code in (("FP32", "f"), ("FP64", "d")):
        size = 2 * struct.calcsize(code)
        tensor = {"name": "features", "shape": [1, 2], "datatype": datatype}
        header = orjson.dumps({"inputs": [tensor | {"parameters": {"binary_data_size": size}}]})
        hits = tensors._cached_header.cache_info().hits
        for values in ([1.5, -2.0], [3.25, 4.0]):
            body = header + struct.pack(f"<2{code}", *values)
            request = tensors.parse_request(body, len(header), model, 10)
            assert list(request.row or []) == values and request.X.tolist() == [values]
            assert request.rows == 1
        assert tensors._cached_header.cache_info().hits == hits + 1
        for bad in (float("nan"), float("inf")):
            with pytest.raises(BadRequest, match=f"not a finite {datatype} number .* row 0"):
                tensors.parse_request(
                    header + struct.pack(f"<2{code}", 1.0, bad), len(header), model, 10
                )
        with pytest.raises(BadRequest, match=f"binary_data_size {size} but 4 bytes follow"):
            tensors.parse_request(header + bytes(4), len(header), model, 10)
    # several rows after a cached header: the array path, each value checked
    tensor = {"name": "features", "shape": [2, 2], "datatype": "FP32"}
    header = orjson.dumps({"inputs": [tensor | {"parameters": {"binary_data_size": 16}}]})
    for _ in range(2):
        request = tensors.parse_request(
            header + struct.pack("<4f", 1, 2, 3, 4), len(header), model, 10
        )
        assert request.X.tolist() == [[1, 2], [3, 4]] and request.rows == 2
    with pytest.raises(BadRequest, match="row 1"):
        tensors.parse_request(
            header + struct.pack("<4f", 1, 2, 3, float("nan")), len(header), model, 10
        )


def _parsed_or_message(raw: bytes, model: Any, max_rows: int) -> Any:
    """The general path's checked request for a JSON body, or its 400's message."""
    from service.errors import BadRequest
    from service.v2 import tensors

    try:
        return tensors.parse_request(raw, None, model, max_rows)
    except BadRequest as exc:
        return str(exc)


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
@pytest.mark.parametrize("shape", [[1, 2], [3, 2], [300, 2]])  # 300 rows: read by simdjson
def test_a_json_header_checked_through_its_template_answers_as_a_fresh_check(
    shape: list[int], datatype: str
) -> None:
    """Values read into a cached template give what the whole header's check gives."""
    from types import SimpleNamespace

    from service.v2 import tensors

    model: Any = SimpleNamespace(features=("petal_length", "petal_width"))
    n = shape[0] * shape[1]

    def body(values: str) -> bytes:
        dims = orjson.dumps(shape).decode()
        tensor = f'{{"name":"features","shape":{dims},"datatype":"{datatype}"'
        return f'{{"inputs":[{tensor},"data":[{values}]}}]}}'.encode()

    def outcome(raw: bytes) -> Any:
        request = _parsed_or_message(raw, model, 1000)
        return request if isinstance(request, str) else (request.X.tolist(), request.rows)

    cases = [
        ",".join(["1.5", "-2"] * (n // 2)),
        ",".join(["3.25", " 4e0"] * (n // 2)),
        ",".join(["[1, 2]"] * (n // 2)),  # nested rows: never through the template
        ",".join(["1"] * (n - 1)),  # a value short
        ",".join(["1"] * (n + 1)),  # a value too many
        # what each reader must round alike; beyond 64 bits simdjson leaves it to orjson
        ",".join((["0.1", "-0", "-0.0", "2E-3", "12345678901234567890", "9" * 30] * n)[:n]),
        ",".join(["1"] * (n - 1) + ["1e39"]),  # beyond FP32 (FP64 takes it)
        ",".join(["1"] * (n - 1) + ["1e999"]),  # beyond a double
        ",".join(["1"] * (n - 1) + ["+1"]),  # not JSON
        ",".join(["1"] * (n - 1) + ["1.."]),
        ",".join(["1"] * (n - 1)) + ",",
        "",
        ",".join(["1"] * (n - 1) + ["true"]),  # not a number: never through the template
        ",".join(["1"] * (n - 1) + ['"1"']),
        ",".join(["1"] * (n - 1) + ['"id"']),  # an id's key in the values: not a number
        ",".join(["1"] * (n - 1) + ['"data":[1']),  # a second data array inside the first
    ]
    tensors.forget_checked_headers()
    fresh = {values: outcome(body(values)) for values in cases}
    assert not any(isinstance(fresh[v], str) for v in cases[:3] + cases[5:6])
    assert all(isinstance(fresh[v], str) for v in cases[3:5] + cases[7:])
    assert isinstance(fresh[cases[6]], str) == (datatype == "FP32")
    tensors.forget_checked_headers()
    assert outcome(body(cases[0])) == fresh[cases[0]] and len(tensors._TEMPLATES) == 1
    for values in cases:  # now through the template
        assert outcome(body(values)) == fresh[values], values


@pytest.mark.parametrize("rows", [1, 2, 300])  # one row, the array, simdjson's array
def test_fp32_json_values_that_round_to_its_maximum_are_taken(rows: int) -> None:
    """3.4028235e38 is FP32's maximum written shortest (as orjson writes a float32): it
    rounds to the maximum, as a binary FP32 tensor holds it; half an ulp more is a 400."""
    from types import SimpleNamespace

    from service.v2 import tensors

    model: Any = SimpleNamespace(features=("petal_length", "petal_width"))
    largest = float(np.finfo(np.float32).max)

    def body(value: str) -> bytes:
        data = ",".join([value, "-" + value] * rows)
        tensor = f'"name":"features","shape":[{rows},2],"datatype":"FP32","data":[{data}]'
        return f'{{"inputs":[{{{tensor}}}]}}'.encode()

    tensors.forget_checked_headers()
    for _ in range(2):  # checked afresh, then through the template (and the plain row)
        for value in ("3.4028235e38", "3.40282356e38", repr(largest)):
            request = _parsed_or_message(body(value), model, 1000)
            assert not isinstance(request, str), (value, request)
            assert request.X.tolist() == [[largest, -largest]] * rows
            if rows == 1:
                plain = tensors.plain_row(body(value), model.features, 1000)
                assert plain is not None and plain[0] == (largest, -largest)
        for value in ("3.4028235677973366e38", "3.4028236e38", "1e39"):
            message = _parsed_or_message(body(value), model, 1000)
            assert isinstance(message, str) and "not a finite FP32" in message, value


def test_a_json_template_is_kept_only_for_the_input_data_itself() -> None:
    from types import SimpleNamespace

    from service.v2 import tensors

    model: Any = SimpleNamespace(features=("petal_length", "petal_width"))
    tensors.forget_checked_headers()
    # the only '"data":[' is in an output the checks ignore; the input's data is spaced
    decoy = (
        b'{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP64","data": [1, 2]}],'
        b'"outputs":[{"name":"label","data":[7,8]}]}'
    )
    assert tensors.parse_request(decoy, None, model, 10).X.tolist() == [[1, 2]]
    assert not tensors._TEMPLATES
    spaced = decoy.replace(b'"data": [1, 2]', b'"data": [3, 4]')
    assert tensors.parse_request(spaced, None, model, 10).X.tolist() == [[3, 4]]
    # a request id makes each header its own: no template is kept for it
    with_id = (
        b'{"id":"r-1","inputs":[{"name":"features","shape":[1,2],"datatype":"FP32","data":[1,2]}]}'
    )
    assert tensors.parse_request(with_id, None, model, 10).id == "r-1"
    assert not tensors._TEMPLATES


def test_the_json_templates_kept_are_bounded() -> None:
    from types import SimpleNamespace

    from service.v2 import tensors

    model: Any = SimpleNamespace(features=("petal_length", "petal_width"))
    tensors.forget_checked_headers()
    for i in range(tensors._MAX_TEMPLATES + 10):
        tensor = f'{{"name":"features","shape":[1,2],"datatype":"FP32","data":[{i},1],'
        raw = f'{{"inputs":[{tensor}"parameters":{{"tag":{i}}}}}]}}'.encode()
        assert tensors.parse_request(raw, None, model, 10).row == (float(i), 1.0)
    assert len(tensors._TEMPLATES) == tensors._MAX_TEMPLATES


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_the_plain_one_row_path_reads_what_the_general_path_reads(datatype: str) -> None:
    """``plain_row`` gives the general path's row and outputs, or None and leaves it to it."""
    from types import SimpleNamespace

    from service.v2 import tensors

    model: Any = SimpleNamespace(features=("petal_length", "petal_width"))
    outputs = (
        ',"outputs":[{"name":"label"},{"name":"probabilities","parameters":{"binary_data":true}}]'
    )

    def body(values: str, shape: str = "[1,2]", extra: str = "") -> bytes:
        tensor = f'{{"name":"features","shape":{shape},"datatype":"{datatype}","data":[{values}]}}'
        return f'{{"inputs":[{tensor}]{extra}}}'.encode()

    def general(raw: bytes) -> Any:
        request = _parsed_or_message(raw, model, 10)
        if isinstance(request, str):
            return request
        if request.row is None:  # several rows
            return request.X.tolist(), request.outputs
        return tuple(request.row), request.outputs

    tensors.forget_checked_headers()
    assert tensors.plain_row(body("1,2"), model.features, 10) is None  # no template yet
    cases = [
        ("5.1,3.5", "[1,2]", ""),
        ("0.1, -0", "[1,2]", outputs),
        ("-0.0,12345678901234567890", "[1,2]", ""),
        ("1e38,1", "[1,2]", ""),
        ("1e39,1", "[1,2]", ""),  # beyond FP32: a 400 there, None here
        ("1", "[1,2]", ""),  # a value short
        ("1,2,3", "[1,2]", ""),
        ("1,,2", "[1,2]", ""),
        ("1,2,3,4", "[2,2]", ""),  # two rows: the general path's
    ]
    for values, shape, extra in cases:
        raw = body(values, shape, extra)
        want = general(raw)  # (also keeps its template)
        got = tensors.plain_row(raw, model.features, 10)
        if got is not None:
            assert got == want, raw
        else:
            assert isinstance(want, str) or shape != "[1,2]", raw
    for values in ("5.1,3.5", "0.1, -0", "1e38,1"):  # through the last layout seen
        assert tensors.plain_row(body(values), model.features, 10) is not None, values
    assert tensors._last_row_plan[0] is not None
    for values in ("1,true", '1,"2"', "1],[2", "[1,2]"):  # the same layout around them
        assert tensors.plain_row(body(values), model.features, 10) is None, values
        assert isinstance(general(body(values)), str) == (values != "[1,2]"), values
    other = body("5.1,3.5", extra=outputs)  # another layout: its own plan, then the last
    assert tensors.plain_row(other, model.features, 10) == general(other)
    assert tensors.plain_row(body("5.1,3.5"), model.features, 10) == general(body("5.1,3.5"))
    assert tensors.plain_row(body("5.1,3.5"), ("a", "b", "c"), 10) is None  # other features
    huge = body(",".join(["1" + "0" * 600] * 2))
    assert tensors.plain_row(huge, model.features, 10) is None  # long: not plainly one row


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_the_plain_binary_row_reads_what_the_general_path_reads(datatype: str) -> None:
    """``plain_binary_row`` gives the general path's row and outputs, or None and leaves
    the request (and its 400) to it; a request id is never dropped by it."""
    from types import SimpleNamespace

    from service.errors import BadRequest
    from service.v2 import tensors

    model: Any = SimpleNamespace(features=("petal_length", "petal_width"))
    fmt = "<2f" if datatype == "FP32" else "<2d"
    row_bytes = struct.calcsize(fmt)

    def header(extra: str = "", shape: str = "[1,2]", size: int = row_bytes) -> bytes:
        parameters = f'"parameters":{{"binary_data_size":{size}}}'
        tensor = f'{{"name":"features","shape":{shape},"datatype":"{datatype}",{parameters}}}'
        return f'{{"inputs":[{tensor}]{extra}}}'.encode()

    def general(raw: bytes, length: int) -> Any:
        try:
            request = tensors.parse_request(raw, length, model, 10)
        except BadRequest as exc:
            return str(exc)
        return tuple(request.row) if request.row is not None else None, request.outputs

    def plain(raw: bytes, length: int) -> Any:
        return tensors.plain_binary_row(raw, str(length).encode(), model.features, 10)

    tensors.forget_checked_headers()
    row = struct.pack(fmt, 5.1, 3.5)
    cases = [
        (header(), row),
        (header(',"outputs":[{"name":"label","parameters":{"binary_data":false}}]'), row),
        (header(',"parameters":{"binary_data_output":true}'), row),
        (header(), struct.pack(fmt, -0.0, 1e-30)),
        (header(',"id":"r-1"'), row),  # an id: only the general path answers it
        (header(), row[:-1]),  # a byte short
        (header(), row + b"\0"),  # a byte too many
        (header(), struct.pack(fmt, float("nan"), 1)),
        (header(), struct.pack(fmt, 1, float("inf"))),
        (header(shape="[2,2]", size=2 * row_bytes), row * 2),  # two rows
        (header(size=row_bytes + 1), row),  # a binary_data_size the shape does not take
        (header(',"outputs":[{"name":"nope"}]'), row),
        (b"{not json", row),
    ]
    answered = 0
    for head, values in cases:
        raw = head + values
        want = general(raw, len(head))
        got = plain(raw, len(head))
        assert plain(raw, len(head)) == got, raw  # the same through the plan kept
        if got is None:
            assert isinstance(want, str) or b'"id"' in head or b"[2,2]" in head, raw
        else:
            assert got == want, raw
            answered += 1
    assert answered == 4
    raw = header() + row
    for length in (b"x", b"-1", str(len(raw) + 1).encode(), b"0", b"5"):
        assert tensors.plain_binary_row(raw, length, model.features, 10) is None, length
    assert plain(raw, len(header())) is not None
    assert tensors.plain_binary_row(raw, str(len(header())).encode(), ("a", "b", "c"), 10) is None
