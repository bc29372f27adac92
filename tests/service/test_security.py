"""Attacks on a real server: the token, ids that try to leave the store, huge bodies,
slow clients, CORS, and a source check for pickle, eval and exec.
"""

from __future__ import annotations

import ast
import select
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .server import ROOT, Server, start_server

HEAD_TIMEOUT = 3.0
BODY_TIMEOUT = 3.0
MAX_TRAIN_BODY = 4 * 1024 * 1024
ORIGIN = "https://dashboard.example"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def guarded(seed_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a generated token, CORS for one origin, short head timeout and a
    small /train body limit; beside its store, a valid model folder *outside* it."""
    root = tmp_path_factory.mktemp("guarded")
    shutil.copytree(seed_store, root / "models")
    version = next(p for p in (root / "models").iterdir() if p.is_dir() and p.name[0] == "v")
    shutil.copytree(version, root / "outside")
    env = {
        "BACKPROP_API_TOKEN": "",
        "BACKPROP_CORS_ORIGINS": ORIGIN,
        "BACKPROP_HEADER_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "BACKPROP_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "BACKPROP_MAX_TRAIN_BODY_BYTES": str(MAX_TRAIN_BODY),
        "BACKPROP_TRAIN_QUEUE_SIZE": "2",
    }
    running = start_server(root / "models", root, token="", env=env)
    lines = [line for line in running.output().splitlines() if "token for this run" in line]
    assert len(lines) == 1, running.output()
    running.token = lines[0].rsplit(" ", 1)[-1]
    yield running
    assert running.stop() == 0, running.output()


# -- the token ------------------------------------------------------------------


def test_token_comparison_is_constant_time() -> None:
    source = (ROOT / "service" / "deps.py").read_text()
    assert "hmac.compare_digest(" in source or "secrets.compare_digest(" in source
    tree = ast.parse(source)
    for node in ast.walk(tree):  # no == or != against the expected token
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
        ):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert not names & {"token", "expected"}, ast.unparse(node)


def _token_operations(server: Server) -> list[tuple[str, str]]:
    """Every (method, path) whose OpenAPI entry documents 401 and 403."""
    spec = server.get("/openapi.json").json()
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if {"401", "403"} <= set(operation.get("responses", {})):
                found.append((method.upper(), path))
    return found


def test_every_token_call_is_401_without_and_403_with_a_wrong_token(guarded: Server) -> None:
    operations = _token_operations(guarded)
    assert {p for _, p in operations} >= {"/train", "/train/{job_id}", "/models/{version}/activate"}
    for method, template in operations:
        path = template.replace("{job_id}", "job-x").replace("{version}", "v-x")
        body = {} if method == "POST" else None
        missing = httpx.request(method, guarded.url + path, json=body, timeout=30)
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.headers["www-authenticate"] == "Bearer"
        for wrong in (guarded.token[:-1], guarded.token + "x", "x" * 43, guarded.token.upper()):
            if wrong == guarded.token:
                continue
            answer = httpx.request(
                method, guarded.url + path, json=body, timeout=30,
                headers={"Authorization": f"Bearer {wrong}"},
            )  # fmt: skip
            assert answer.status_code == 403, (method, path, answer.text)


def test_the_token_never_leaks(guarded: Server) -> None:
    token, auth = guarded.token, {"Authorization": f"Bearer {guarded.token}"}
    version = guarded.get("/model").json()["version"]
    answers = [
        guarded.post("/train?wait=true", headers=auth, json={"max_epochs": 5, "activate": False}),
        guarded.post("/train", headers=auth, json={"hidden_units": 999}),
        guarded.post("/train", headers=auth, content=b"{not json"),
        guarded.post(f"/models/{version}/activate", headers=auth),
        guarded.post("/models/nope/activate", headers=auth),
        guarded.post("/models/nope/activate", headers={"Authorization": f"Bearer {token}x"}),
        guarded.post("/models/nope/activate", headers={"Authorization": f"Basic {token}"}),
        guarded.get("/train", headers=auth),
        guarded.get("/models", headers=auth),
        guarded.get("/openapi.json", headers=auth),
        guarded.get("/health/ready", headers=auth),
        guarded.post("/predict", headers=auth, json={"instances": [[1.0]]}),
        guarded.get("/backprop?weights=lecture&x=5&x=3&label=1", headers=auth),
        guarded.get("/v2/models/iris-net", headers=auth),
        guarded.get("/metrics", headers=auth),
    ]
    for answer in answers:
        assert answer.status_code < 500, answer.text
        assert token not in answer.text, answer.request.url
        assert not [v for v in answer.headers.values() if token in v], answer.request.url
    log = guarded.wait_for_log("GET /metrics 200")
    lines = [line for line in log.splitlines() if token in line]
    assert len(lines) == 1 and "token for this run" in lines[0], lines


# -- ids ------------------------------------------------------------------------

# Dot segments go percent-encoded: a client (httpx too) would resolve "/x/.." itself.
HOSTILE_IDS = [
    "%2E%2E",
    "%2e%2e%2Foutside",
    "..%2Foutside",
    "%2E%2E%2Foutside",
    "..%5Coutside",
    "%00",
    "v%00x",
    "a" * 10_000,
    "%F0%9F%92%A5",
    "v;rm%20-rf",
    "CON",
    "%20",
    "outside%2F..%2F..%2Fmodels",
]


def test_hostile_version_and_job_ids_are_404_or_422_and_stay_in_the_store(
    guarded: Server,
) -> None:
    outside = guarded.store.parent / "outside"
    before = sorted(p.name for p in guarded.store.parent.iterdir())
    outside_mtime = outside.stat().st_mtime_ns
    auth = guarded.auth
    row = {"instances": [[5.0, 3.0]]}
    v2 = {"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [5, 3]}]}
    for raw in HOSTILE_IDS:
        calls = [
            ("GET", f"/models/{raw}", None),
            ("POST", f"/models/{raw}/activate", None),
            ("POST", f"/predict?version={raw}", row),
            ("GET", f"/backprop?version={raw}&x=5&x=3&label=1", None),
            ("GET", f"/v2/models/iris-net/versions/{raw}", None),
            ("GET", f"/v2/models/iris-net/versions/{raw}/ready", None),
            ("POST", f"/v2/models/iris-net/versions/{raw}/infer", v2),
            ("GET", f"/train/{raw}", None),
            ("DELETE", f"/train/{raw}", None),
        ]
        for method, path, body in calls:
            answer = httpx.request(method, guarded.url + path, json=body, headers=auth, timeout=30)
            assert answer.status_code in (404, 422), (method, path[:80], answer.status_code)
            assert "outside" not in answer.text or answer.status_code == 404
    assert sorted(p.name for p in guarded.store.parent.iterdir()) == before
    assert outside.stat().st_mtime_ns == outside_mtime
    assert guarded.get("/model").status_code == 200


def _raw_status(server: Server, head: bytes) -> int:
    """Send one raw request head (clients refuse URLs this long); the answer's status."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = sock.recv(4096)
    return int(reply.split()[1])


def test_a_request_head_over_the_limit_is_431(guarded: Server) -> None:
    long_url = b"GET /models/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _raw_status(guarded, long_url) == 431
    answer = guarded.get("/health/live", headers={"x-filler": "b" * 70_000})
    assert answer.status_code == 431
    assert guarded.get("/health/live").status_code == 200


# -- bodies over the limit --------------------------------------------------------


def _rss_kib(pid: int) -> int:
    """Resident memory of the server process and its children (the workers)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _send_until_answered(server: Server, path: str, *, chunked: bool) -> tuple[int, int]:
    """Send a 50 MB body on a raw socket until the server answers; (status, bytes sent)."""
    port = int(server.url.rsplit(":", 1)[1])
    size = 50 * MB
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "Authorization: Bearer " + server.token + "\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n"
    piece = b"[" + b"1.0," * (64 * 1024 // 4 - 1) + b"1]"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n")
        reply = b""
        while sent < size:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        sock.settimeout(30)
        try:
            while b"\r\n" not in reply:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except ConnectionResetError:
            pass
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split()[1]), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_50_mb_body_is_refused_before_it_is_read_and_memory_stays_flat(
    guarded: Server, chunked: bool
) -> None:
    guarded.post("/predict", json={"instances": [[5.0, 3.0]] * 1000})  # warm
    before = _rss_kib(guarded.proc.pid)
    for path in ("/predict", "/v2/models/iris-net/infer", "/train"):
        for _ in range(3):
            status, sent = _send_until_answered(guarded, path, chunked=chunked)
            assert status == 413, path
            assert sent < 25 * MB, f"{path}: the server read {sent} bytes before refusing"
    grown = (_rss_kib(guarded.proc.pid) - before) / 1024
    assert grown < 40, f"the server grew by {grown:.0f} MiB"
    assert guarded.post("/predict", json={"instances": [[5.0, 3.0]]}).status_code == 200


# -- /train cannot exhaust the machine -----------------------------------------------


def test_train_bounds_hold(guarded: Server) -> None:
    auth = guarded.auth
    for body in ({"hidden_units": 65}, {"max_epochs": 100_001}, {"features": ["a"] * 65}):
        answer = guarded.post("/train", headers=auth, json=body)
        assert answer.status_code == 422, body
    rows = {"feature_names": ["a"], "rows": [[1.0]] * 100_001, "labels": ["x", "y"] * 50_000}
    rows["labels"].append("x")
    answer = guarded.post("/train", headers=auth, json={"data": rows})
    assert answer.status_code in (413, 422), answer.text[:200]  # over the body limit here
    wide = {"feature_names": [f"f{i}" for i in range(1001)], "rows": [[0.0] * 1001] * 2}
    answer = guarded.post("/train", headers=auth, json={"data": {**wide, "labels": ["x", "y"]}})
    assert answer.status_code == 422 and "feature_names" in answer.text
    # The queue holds: two queued (behind a long one) is the most; the next is a 429.
    long = {"optimizer": "sgd", "batch_size": 1, "max_epochs": 100_000, "tolerance": 0}
    ids = []
    first = guarded.post("/train", headers=auth, json={**long, "activate": False}).json()["job_id"]
    deadline = time.monotonic() + 30
    while guarded.get(f"/train/{first}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        for _ in range(2):
            queued = guarded.post("/train", headers=auth, json={"max_epochs": 5, "activate": False})
            assert queued.status_code == 202
            ids.append(queued.json()["job_id"])
        full = guarded.post("/train", headers=auth, json={"max_epochs": 5})
        assert full.status_code == 429 and full.headers["retry-after"]
    finally:
        for job_id in [first, *ids]:
            guarded.client().delete(f"/train/{job_id}", headers=auth)


# -- source checks ------------------------------------------------------------------

FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "cloudpickle", "joblib"}


def test_no_pickle_eval_or_exec_in_model_and_service() -> None:
    files = [p for pkg in ("model", "service") for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 20
    found = []
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = {a.name.split(".")[0] for a in node.names}
                if isinstance(node, ast.ImportFrom) and node.module:
                    names.add(node.module.split(".")[0])
                if names & FORBIDDEN_MODULES:
                    found.append(f"{where} imports {names & FORBIDDEN_MODULES}")
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                builtin = isinstance(func, ast.Name) or (
                    isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "builtins"
                )
                if name in {"eval", "exec", "__import__"} or (name == "compile" and builtin):
                    found.append(f"{where} calls {name}")
                for keyword in node.keywords:
                    if keyword.arg == "allow_pickle" and not (
                        isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                    ):
                        found.append(f"{where} allows pickle")
        text = path.read_text()
        for word in ("pickle.load", "eval(", "exec("):
            if word in text.replace("create_subprocess_exec(", ""):
                found.append(f"{path.relative_to(ROOT)} mentions {word}")
    assert not found, found


# -- CORS ---------------------------------------------------------------------------


def _preflight(server: Server, origin: str, path: str = "/predict") -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    return httpx.options(server.url + path, headers=headers, timeout=30)


def test_cors_is_off_unless_configured(server: Server) -> None:
    preflight = _preflight(server, ORIGIN)
    assert "access-control-allow-origin" not in preflight.headers
    answer = server.post("/predict", json={"instances": [[5.0, 3.0]]}, headers={"Origin": ORIGIN})
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.startswith("access-control-")]
    listed = server.get("/models", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in listed.headers


def test_cors_answers_the_configured_origin_only(guarded: Server) -> None:
    preflight = _preflight(guarded, ORIGIN, "/train")
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    for answer in (
        guarded.post("/predict", json={"instances": [[5.0, 3.0]]}, headers={"Origin": ORIGIN}),
        guarded.get("/models", headers={"Origin": ORIGIN}),
        guarded.get("/v2/models/iris-net", headers={"Origin": ORIGIN}),
    ):
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()
    other = "https://evil.example"
    assert _preflight(guarded, other).status_code == 400
    answer = guarded.post("/predict", json={"instances": [[5.0, 3.0]]}, headers={"Origin": other})
    assert "access-control-allow-origin" not in answer.headers


# -- slow clients ---------------------------------------------------------------------


def _slow_client(port: int, outcome: dict[str, float | bytes], *, drip: bool) -> None:
    """Open a connection and send a request head a byte per second (or nothing)."""
    started = time.monotonic()
    head = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 200
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            for byte in head if drip else b"":
                sock.sendall(bytes([byte]))
                readable, _, _ = select.select([sock], [], [], 1.0)
                if readable:
                    break
            sock.settimeout(60)
            reply = sock.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            reply = b""
    outcome["closed_after"] = time.monotonic() - started
    outcome["reply"] = reply


def test_a_slow_client_is_closed_within_the_bound_and_others_are_served(
    guarded: Server,
) -> None:
    port = int(guarded.url.rsplit(":", 1)[1])
    outcomes: list[dict[str, float | bytes]] = [{} for _ in range(6)]
    threads = [
        threading.Thread(target=_slow_client, args=(port, outcome), kwargs={"drip": i % 3 != 0})
        for i, outcome in enumerate(outcomes)
    ]
    for thread in threads:
        thread.start()
    served = 0
    started = time.monotonic()
    while time.monotonic() - started < HEAD_TIMEOUT + 1:
        assert guarded.post("/predict", json={"instances": [[5.0, 3.0]]}).status_code == 200
        served += 1
    for thread in threads:
        thread.join(60)
    assert served > 5
    for outcome in outcomes:
        assert HEAD_TIMEOUT - 0.5 < float(outcome["closed_after"]) < HEAD_TIMEOUT + 10, outcome
        reply = outcome["reply"]
        assert isinstance(reply, bytes)
        assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply
    assert "request head took over" in guarded.output()


# -- slow bodies ------------------------------------------------------------------

STALLED = {
    "predict": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Content-Length: 100\r\n\r\n{"instances"',
    "v2 infer": b"POST /v2/models/iris-net/infer HTTP/1.1\r\nHost: x\r\n"
    b'Content-Length: 100\r\n\r\n{"inputs":',
    "backprop (a FastAPI route)": b"POST /backprop HTTP/1.1\r\nHost: x\r\n"
    b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"x": [5',
    "chunked train": b"POST /train HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Transfer-Encoding: chunked\r\n\r\n10\r\n{"activate"',
}


def _stall(port: int, request: bytes, outcome: dict[str, float | bytes]) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(request)
        try:
            outcome["reply"] = sock.recv(4096)
        except ConnectionResetError:
            outcome["reply"] = b""
    outcome["closed_after"] = time.monotonic() - started


def test_a_body_that_stops_coming_is_408_within_the_bound(guarded: Server) -> None:
    port = int(guarded.url.rsplit(":", 1)[1])
    outcomes: dict[str, dict[str, float | bytes]] = {name: {} for name in STALLED}
    threads = [
        threading.Thread(target=_stall, args=(port, STALLED[name], outcomes[name]))
        for name in STALLED
    ]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    while time.monotonic() - started < BODY_TIMEOUT:  # meanwhile others are served
        assert guarded.post("/predict", json={"instances": [[5.0, 3.0]]}).status_code == 200
    for thread in threads:
        thread.join(60)
    for name, outcome in outcomes.items():
        assert BODY_TIMEOUT - 0.5 < float(outcome["closed_after"]) < BODY_TIMEOUT + 5, name
        assert outcome["reply"].startswith(b"HTTP/1.1 408"), (name, outcome)  # type: ignore[union-attr]
    log = guarded.wait_for_log("POST /train 408")
    for line in ("POST /predict 408", "POST /v2/models/iris-net/infer 408", "POST /backprop 408"):
        assert line in log  # the access line tells what the client got
    assert "request body took over" in log


def test_a_trickled_body_is_cut_and_a_fair_upload_is_not(guarded: Server) -> None:
    port = int(guarded.url.rsplit(":", 1)[1])
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head + b"Content-Length: 40\r\n\r\n")
        started, cut = time.monotonic(), None
        for _ in range(40):  # a byte every 0.4 s: 16 s for the whole body
            readable, _, _ = select.select([sock], [], [], 0.4)
            if readable:
                cut = time.monotonic() - started, sock.recv(4096)
                break
            sock.sendall(b" ")
        assert cut is not None, "a trickled body was never cut"
        assert cut[0] < BODY_TIMEOUT + 2 and cut[1].startswith(b"HTTP/1.1 408"), cut
    # 1 MiB in 16 pieces over 4 s: longer than the timeout, but each 64 KiB buys a second
    body = b'{"instances": [[5.0, 3.0]]}'.ljust(MB)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body))
        for k in range(16):
            sock.sendall(body[k * MB // 16 : (k + 1) * MB // 16])
            time.sleep(0.25)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200"), "a fair upload was cut"


def test_a_client_that_leaves_mid_body_is_logged_as_gone(guarded: Server) -> None:
    port = int(guarded.url.rsplit(":", 1)[1])
    for path in (b"/predict", b"/backprop"):
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(
                b"POST %s HTTP/1.1\r\nHost: x\r\nX-Request-ID: gone-%s\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{" % (path, path[1:])
            )
            time.sleep(0.3)
    for path in ("predict", "backprop"):  # nginx's 499: no answer reached anyone
        assert f"POST /{path} 499" in guarded.wait_for_log(f"id=gone-{path}")


def test_sigterm_answers_a_body_still_due_503_without_a_traceback(
    seed_store: Path, tmp_path: Path
) -> None:
    shutil.copytree(seed_store, tmp_path / "models")
    server = start_server(tmp_path / "models", tmp_path)
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(STALLED["predict"])
        time.sleep(0.3)
        assert server.stop() == 0, server.output()
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 503"), reply
    output = server.output()
    assert "POST /predict 503" in output
    assert "Traceback" not in output and "Exception in ASGI" not in output, output
