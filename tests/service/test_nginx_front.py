"""``deploy/nginx/nginx.conf``, run by Debian's nginx in front of three live replicas.

The file is the one the cluster compose mounts, with only what Docker would give it
rewritten: the replicas' addresses, the listening ports and the pid file. HTTP and
gRPC calls (the real tritonclient) must reach every replica, keep a client's
request id and their status codes, and survive a replica that is down.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

from ..system import apt_install
from .server import ROOT, free_port
from .test_grpc import GrpcServer, start_grpc_server

CONFIG = ROOT / "deploy" / "nginx" / "nginx.conf"
REPLICAS = ("api", "api-2", "api-3")
MODEL = "iris-net"
MAX_MESSAGE = 64 * 1024  # each replica's gRPC message limit here
ROW = [5.1, 3.5]


@dataclass
class Front:
    """nginx on ``http`` and ``grpc`` (host:port), and the replicas behind it."""

    http: str
    grpc: str
    replicas: list[GrpcServer]
    proc: subprocess.Popen[bytes]
    log: Path


def render(config: str, replicas: list[GrpcServer], http: int, grpc_port: int, work: Path) -> str:
    """The cluster's nginx.conf with Docker's names and ports replaced by loopback ones."""
    for name, replica in zip(REPLICAS, replicas, strict=True):
        http_port = replica.http.url.rsplit(":", 1)[1]
        config, found = re.subn(rf"\b{name}:8000\b", f"127.0.0.1:{http_port}", config)
        assert found == 1, f"{name}:8000 is not an HTTP upstream"
        config, found = re.subn(rf"\b{name}:8001\b", replica.target, config)
        assert found == 1, f"{name}:8001 is not a gRPC upstream"
    config, found = re.subn(r"listen 8080;", f"listen 127.0.0.1:{http};", config)
    assert found == 1
    config, found = re.subn(r"listen 8081 http2;", f"listen 127.0.0.1:{grpc_port} http2;", config)
    assert found == 1
    config = config.replace("pid /tmp/nginx.pid;", f"pid {work / 'nginx.pid'};")
    temp = "\n".join(  # Debian's compiled-in temp folders need not be writable here
        f"    {kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return config.replace("http {\n", "http {\n" + temp + "\n", 1)


@pytest.fixture(scope="module")
def front(seed_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    apt_install("nginx", "nginx")
    work = tmp_path_factory.mktemp("nginx")
    replicas: list[GrpcServer] = []
    proc = None
    try:
        for name in REPLICAS:
            store = work / name / "models"
            shutil.copytree(seed_store, store)
            replicas.append(
                start_grpc_server(
                    store, work, env={"BACKPROP_GRPC_MAX_MESSAGE_BYTES": str(MAX_MESSAGE)}
                )
            )
        http, grpc_port = free_port(), free_port()
        conf = work / "nginx.conf"
        conf.write_text(render(CONFIG.read_text(), replicas, http, grpc_port, work))
        checked = subprocess.run(
            ["nginx", "-t", "-p", str(work), "-c", str(conf)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr
        log = work / "nginx.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["nginx", "-p", str(work), "-c", str(conf), "-g", "daemon off;"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        running = Front(f"http://127.0.0.1:{http}", f"127.0.0.1:{grpc_port}", replicas, proc, log)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(running.http + "/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield running
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        for replica in replicas:
            replica.http.stop()


def features(rows: np.ndarray) -> triton.InferInput:
    tensor = triton.InferInput("features", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows.astype(np.float32))
    return tensor


def served_by(replica: GrpcServer, needle: str) -> int:
    """How many access lines of ``replica`` hold ``needle`` (lines follow the answers)."""
    time.sleep(0.3)  # the access log is written in batches after the answers
    return replica.http.log.read_text(errors="replace").count(needle)


def test_the_rendered_file_is_the_cluster_file(front: Front) -> None:
    text = CONFIG.read_text()
    assert "grpc_pass grpc://backprop_grpc;" in text and "proxy_pass http://backprop;" in text
    assert "listen 8081 http2;" in text


def test_http_calls_reach_every_replica_with_the_same_answer(front: Front) -> None:
    before = [served_by(r, "POST /predict 200") for r in front.replicas]
    expected = httpx.post(front.replicas[0].http.url + "/predict", json={"instances": [ROW]})
    with httpx.Client(base_url=front.http, timeout=30) as client:
        answers = [client.post("/predict", json={"instances": [ROW]}) for _ in range(30)]
    assert all(a.status_code == 200 for a in answers)
    assert {a.content for a in answers} == {expected.content}
    after = [served_by(r, "POST /predict 200") for r in front.replicas]
    assert all(b > a for a, b in zip(before, after, strict=True)), (before, after)


def test_a_clients_request_id_is_kept_and_one_is_made_without(front: Front) -> None:
    mine = httpx.get(front.http + "/health/live", headers={"X-Request-ID": "trace-42"})
    assert mine.headers["x-request-id"] == "trace-42"
    made = httpx.get(front.http + "/health/live")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])


def test_grpc_calls_of_one_channel_reach_every_replica(front: Front) -> None:
    rows = np.array([ROW, [6.7, 3.0]])
    expected = httpx.post(
        front.replicas[0].http.url + "/predict", json={"instances": rows.tolist()}
    ).json()["predictions"]
    needle = "GRPC /inference.GRPCInferenceService/ModelInfer OK"
    before = [served_by(r, needle) for r in front.replicas]
    client = triton.InferenceServerClient(front.grpc)
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(MODEL)
        assert client.get_model_metadata(MODEL).name == MODEL
        for _ in range(30):
            result = client.infer(MODEL, [features(rows)])
            probabilities = result.as_numpy("probabilities")
            for got, want in zip(probabilities, expected, strict=True):
                np.testing.assert_allclose(
                    got, np.float32(list(want["probabilities"].values())), rtol=1e-6
                )
            assert [x.decode() for x in result.as_numpy("label")] == [p["label"] for p in expected]
    finally:
        client.close()
    after = [served_by(r, needle) for r in front.replicas]
    assert all(b > a for a, b in zip(before, after, strict=True)), (before, after)


def test_grpc_request_ids_pass_both_ways(front: Front) -> None:
    """A caller's id reaches a replica's access line and comes back in the trailers."""
    with grpc.insecure_channel(front.grpc) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        _, call = stub.ServerLive.with_call(
            pb.ServerLiveRequest(), metadata=(("x-request-id", "grpc-trace-7"),), timeout=10
        )
    assert ("x-request-id", "grpc-trace-7") in tuple(call.trailing_metadata())
    assert any(served_by(r, "id=grpc-trace-7") for r in front.replicas)


def test_grpc_status_codes_come_through(front: Front) -> None:
    client = triton.InferenceServerClient(front.grpc)
    try:
        with pytest.raises(InferenceServerException) as unknown:
            client.infer("no-such-model", [features(np.array([ROW]))])
        assert unknown.value.status() == "StatusCode.NOT_FOUND"
        wrong = triton.InferInput("features", [1, 3], "FP32")
        wrong.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
        with pytest.raises(InferenceServerException) as invalid:
            client.infer(MODEL, [wrong])
        assert invalid.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert "features" in invalid.value.message()
        big = np.zeros((MAX_MESSAGE // 8 + 100, 2))  # over the replicas' message limit
        with pytest.raises(InferenceServerException) as too_big:
            client.infer(MODEL, [features(big)])
        assert too_big.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    finally:
        client.close()


def test_grpc_health_through_the_front(front: Front) -> None:
    with grpc.insecure_channel(front.grpc) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_a_replica_down_is_skipped_by_http_and_grpc(front: Front) -> None:
    """Last in this file: it stops a replica."""
    assert front.replicas[1].http.stop() == 0
    with httpx.Client(base_url=front.http, timeout=30) as client:
        assert all(
            client.post("/predict", json={"instances": [ROW]}).status_code == 200 for _ in range(12)
        )
    client = triton.InferenceServerClient(front.grpc)
    try:
        for _ in range(12):
            assert client.infer(MODEL, [features(np.array([ROW]))]).as_numpy("label") is not None
    finally:
        client.close()
