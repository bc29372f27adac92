"""Serving benchmark: the service as shipped beside three reference servers.

    .venv/bin/python bench/serve.py [--seconds 2] [--rounds 7] [--out PATH] [--smoke]

Servers, one uvicorn worker each, all pinned to the same core (wrk runs on the other):

- ours: ``python -m service`` with its shipped defaults (log level info, so one access
  line per request, written to a file; Prometheus metrics; request ids; the API token
  set), on a store holding the default model;
- empty: FastAPI + pydantic parsing the body, constant answer (``bench/baselines.py``);
- sklearn: naive FastAPI + scikit-learn ``MLPClassifier`` service (``bench/baselines.py``);
- floor: raw ASGI + orjson + the NumPy 2-3-1 forward pass (``bench/floor.py``).

Loads, each at c=1, 16 and 64: single-row and 1,000-row /predict bodies, V2 infer with
JSON and binary tensors (1 and 1,000 rows), GET /backprop?weights=lecture, and ours'
single-row /predict once more after the single-row V2 cells (an A/A control). Each round
takes every concurrency in turn and every (load, server) cell at it, single-row loads
together, so that noise from other work on the machine falls on every server alike and
the cells a ratio compares run seconds apart; figures are medians over rounds, with
min-max spread, and ratios are medians of per-round ratios. Also: start to first 200
with a stored model, idle RSS (beside the FastAPI + NumPy app, with and without a gRPC
server in its process), and p99 while a training job runs (idle and training rounds
alternated).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import write_out  # noqa: E402
from wrk import WrkResult, ensure_wrk, run_wrk  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
ROW = [5.1, 3.5]
INFER = "/v2/models/iris-net/infer"
LONG_JOB = {"optimizer": "sgd", "batch_size": 1, "max_epochs": 100000, "tolerance": 0}
CONCURRENCY = (1, 16, 64)
CONTROL = "predict-1-again"

# Idle RSS references: the target's FastAPI + NumPy app, and the same with a gRPC server
# in its process, as each of the service's workers has (issue 12).
RSS_REFERENCES = ("numpy", "numpy_grpc")
SERVER_NAMES = {
    "ours": "ours (as shipped)",
    "empty": "empty FastAPI + pydantic",
    "sklearn": "naive FastAPI + scikit-learn",
    "floor": "raw ASGI + orjson + NumPy (floor)",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_200(port: int, method: str, path: str, body: bytes | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http(port, method, path, body)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"{method} {path} on port {port} never answered 200")


def service_env(store: Path) -> dict[str, str]:
    """The shipped defaults, with only the store, the token and free ports given.

    gRPC stays on, as shipped (its server's memory and start-up count), on a free
    port rather than the fixed 8001 so that several servers can run side by side.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env | {
        "BACKPROP_MODEL_DIR": str(store),
        "BACKPROP_API_TOKEN": TOKEN,
        "BACKPROP_GRPC_PORT": str(free_port()),
    }


def start_ours(store: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service", "--port", str(port), "--workers", "1"],
            cwd=ROOT,
            env=service_env(store),
            stdout=out,
            stderr=out,
        )


def start_reference(name: str, port: int) -> subprocess.Popen[bytes]:
    target = "bench.floor:app" if name == "floor" else f"bench.baselines:{name}"
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--no-access-log"]
        + ["--log-level", "warning"],
        cwd=ROOT,
        env=os.environ | {"BENCH_GRPC_PORT": str(free_port())},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Load:
    """One request shape, sent by wrk to every server that takes it."""

    key: str
    label: str
    method: str
    path: str
    body: Path | None
    headers: tuple[str, ...]
    servers: tuple[str, ...]
    bodies: dict[str, Path]  # a different body (same data) for some servers


def v2_bodies(rows: int, work: Path) -> tuple[Path, Path, str]:
    """The JSON-tensor body, the binary-tensor body and its JSON header's length."""
    data = ROW * rows
    as_json = orjson.dumps(
        {"inputs": [{"name": "features", "shape": [rows, 2], "datatype": "FP32", "data": data}]}
    )
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [rows, 2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 8 * rows},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    json_path, binary_path = work / f"v2-{rows}.json", work / f"v2-{rows}.bin"
    json_path.write_bytes(as_json)
    binary_path.write_bytes(header + struct.pack(f"<{2 * rows}f", *data))
    return json_path, binary_path, str(len(header))


def loads(work: Path) -> list[Load]:
    """Single-row loads first, then 1,000-row ones: with the rounds' order (each
    concurrency in turn, every load at it), the cells a ratio compares run close in time.

    After the single-row V2 cells, ours' single-row /predict runs once more: its ratio to
    the first is what this machine's noise alone makes of one server and load, as far
    apart in each round as the V2-vs-/predict ratios' cells."""
    json_type = ("Content-Type: application/json",)
    out = []
    for rows, word in ((1, "single-row"), (1000, "1,000-row")):
        predict = work / f"predict-{rows}.json"
        predict.write_bytes(orjson.dumps({"instances": [ROW] * rows}))
        out.append(
            Load(
                f"predict-{rows}",
                f"/predict, {word}",
                "POST",
                "/predict",
                predict,
                json_type,
                ("ours", "empty", "sklearn", "floor"),
                {},
            )
        )
        as_json, binary, length = v2_bodies(rows, work)
        out.append(
            Load(
                f"v2json-{rows}",
                f"V2 infer, JSON tensors, {word}",
                "POST",
                INFER,
                as_json,
                json_type,
                ("ours", "empty"),
                {},
            )
        )
        out.append(
            Load(
                f"v2bin-{rows}",
                f"V2 infer, binary tensors, {word}",
                "POST",
                INFER,
                binary,
                (
                    "Content-Type: application/octet-stream",
                    f"Inference-Header-Content-Length: {length}",
                ),
                ("ours",),
                {},
            )
        )
        if rows == 1:  # the A/A control: what noise alone does to a ratio of ours to ours
            out.append(
                Load(
                    CONTROL,
                    "/predict, single-row, again (A/A control)",
                    "POST",
                    "/predict",
                    predict,
                    json_type,
                    ("ours",),
                    {},
                )
            )
    out.append(
        Load(
            "backprop",
            "GET /backprop?weights=lecture",
            "GET",
            "/backprop?weights=lecture&x=5&x=3&label=1",
            None,
            (),
            ("ours",),
            {},
        )
    )
    return out


Cells = dict[tuple[str, int, str], list[WrkResult]]  # (load, c, server) -> rounds


def check_answers(ports: dict[str, int], cases: list[Load]) -> None:
    """Every server answers every load it takes with a 200 before anything is timed."""
    for load in cases:
        body = load.body.read_bytes() if load.body else None
        for server in load.servers:
            if load.body and load.body.suffix == ".bin":
                continue  # binary bodies need their header-length header: checked by wrk's errors
            status, answer = http(ports[server], load.method, load.path, body)
            if status != 200:
                raise SystemExit(
                    f"bench: {server} answered {status} to {load.key}: {answer[:300]!r}"
                )


def interleaved(
    ports: dict[str, int], cases: list[Load], args: argparse.Namespace, client: set[int]
) -> Cells:
    cells: Cells = {}
    seconds, rounds = args.seconds, args.rounds
    for load in cases if not args.smoke else ():  # warm-up: every server, every load
        for server in load.servers:
            run_wrk(
                ports[server],
                load.method,
                load.path,
                load.body,
                concurrency=16,
                seconds=1,
                headers=load.headers,
                cpus=client,
            )
    for index in range(rounds):
        sys.stderr.write(f"bench/serve.py: round {index + 1} of {rounds}\n")
        for c in args.concurrency:
            for load in cases:
                for server in load.servers:
                    result = run_wrk(
                        ports[server],
                        load.method,
                        load.path,
                        load.body,
                        concurrency=c,
                        seconds=seconds,
                        headers=load.headers,
                        cpus=client,
                    )
                    cells.setdefault((load.key, c, server), []).append(result)
    return cells


def spread(values: list[float], fmt: Callable[[float], str]) -> str:
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def ratio(
    cells: Cells, load: str, c: int, a: str, b: str, load_b: str | None = None
) -> list[float]:
    """Per-round req/s of ``a`` on ``load`` over ``b`` on ``load_b`` (default the same)."""
    pairs = zip(cells[(load, c, a)], cells[(load_b or load, c, b)], strict=True)
    return [x.rps / y.rps for x, y in pairs if y.rps]


@dataclass
class Extras:
    starts: list[float]
    rss: dict[str, float]
    idle: dict[int, list[WrkResult]]
    training: dict[int, list[WrkResult]]


def measure_starts(store: Path, work: Path, count: int) -> list[float]:
    """Process start (Popen) to the first 200 of POST /predict, with a stored model."""
    body = orjson.dumps({"instances": [ROW]})
    times = []
    for _ in range(count):
        port = free_port()
        started = time.perf_counter()
        proc = start_ours(store, port, work / "starts.log")
        try:
            wait_200(port, "POST", "/predict", body)
            times.append(time.perf_counter() - started)
        finally:
            stop(proc)
    return times


def training_rounds(
    port: int, work: Path, args: argparse.Namespace, client: set[int]
) -> tuple[dict[int, list[WrkResult]], dict[int, list[WrkResult]]]:
    """Single-row /predict at c=1 and 16, alternating idle rounds and rounds with a
    training job running (its child process inherits the server's core)."""
    body = work / "predict-1.json"
    seconds, rounds = args.seconds, max(1, args.rounds // 2 + 1)
    levels = [c for c in args.concurrency if c in (1, 16)]
    idle: dict[int, list[WrkResult]] = {}
    busy: dict[int, list[WrkResult]] = {}
    for _ in range(rounds):
        for c in levels:
            idle.setdefault(c, []).append(
                run_wrk(
                    port,
                    "POST",
                    "/predict",
                    body,
                    concurrency=c,
                    seconds=seconds,
                    headers=("Content-Type: application/json",),
                    cpus=client,
                )
            )
        status, raw = http(port, "POST", "/train", orjson.dumps(LONG_JOB))
        job = orjson.loads(raw)["job_id"]
        deadline = time.monotonic() + 30
        while orjson.loads(http(port, "GET", f"/train/{job}")[1])["status"] != "running":
            if time.monotonic() > deadline:
                raise SystemExit("bench: the training job never started")
            time.sleep(0.05)
        try:
            for c in levels:
                busy.setdefault(c, []).append(
                    run_wrk(
                        port,
                        "POST",
                        "/predict",
                        body,
                        concurrency=c,
                        seconds=seconds,
                        headers=("Content-Type: application/json",),
                        cpus=client,
                    )
                )
        finally:
            http(port, "DELETE", f"/train/{job}")
            while orjson.loads(http(port, "GET", f"/train/{job}")[1])["status"] == "running":
                time.sleep(0.05)
    return idle, busy


def run(args: argparse.Namespace) -> tuple[list[Load], Cells, Extras]:
    ensure_wrk()
    cores = sorted(os.sched_getaffinity(0))
    server_core = {cores[-1]}
    client = set(cores[:-1]) or server_core
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    store = work / "models"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        port = free_port()
        proc = start_ours(store, port, work / "first.log")  # empty store: trains the default
        try:
            wait_200(port, "GET", "/health/ready", None, timeout=120)
        finally:
            stop(proc)
        starts = measure_starts(store, work, 1 if args.smoke else 5)

        cases = loads(work)
        ports = {name: free_port() for name in (*SERVER_NAMES, *RSS_REFERENCES)}
        procs["ours"] = start_ours(store, ports["ours"], work / "ours.log")
        for name in ("empty", "sklearn", "floor", *RSS_REFERENCES):
            procs[name] = start_reference(name, ports[name])
        wait_200(ports["ours"], "GET", "/health/ready", None)
        for name in ("empty", "sklearn", "floor", *RSS_REFERENCES):
            wait_200(ports[name], "GET", "/ready", None)
        for proc in procs.values():
            os.sched_setaffinity(proc.pid, server_core)
        check_answers(ports, cases)
        one_row = orjson.dumps({"instances": [ROW]})
        for name in ("ours", *RSS_REFERENCES):
            for _ in range(200):
                http(ports[name], "POST", "/predict", one_row)
        time.sleep(0.5)
        rss = {name: rss_mib(proc.pid) for name, proc in procs.items()}
        cells = interleaved(ports, cases, args, client)
        idle, busy = training_rounds(ports["ours"], work, args, client)
        return cases, cells, Extras(starts, rss, idle, busy)
    finally:
        for proc in procs.values():
            stop(proc)
        if args.keep:
            sys.stderr.write(f"bench/serve.py: kept {work}\n")
        else:
            shutil.rmtree(work, ignore_errors=True)


def mark(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def report(cases: list[Load], cells: Cells, extras: Extras, args: argparse.Namespace) -> str:
    lines = [
        "## Serving",
        "",
        "| load | c | server | req/s, median (min-max) | vs empty FastAPI | p50 ms | p99 ms "
        "| errors |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for load in cases:
        for c in args.concurrency:
            for server in load.servers:
                rounds = cells[(load.key, c, server)]
                vs = ""
                if server != "empty" and "empty" in load.servers:
                    vs = f"{statistics.median(ratio(cells, load.key, c, server, 'empty')):.2f}x"
                lines.append(
                    f"| {load.label} | {c} | {SERVER_NAMES[server]} | "
                    f"{spread([r.rps for r in rounds], lambda v: f'{v:.0f}')} | {vs} | "
                    f"{statistics.median(r.p50_ms for r in rounds):.2f} | "
                    f"{statistics.median(r.p99_ms for r in rounds):.2f} | "
                    f"{sum(r.errors for r in rounds)} |"
                )

    def med(values: list[float]) -> float:
        return statistics.median(values)

    def rng(values: list[float]) -> str:
        return spread(values, lambda v: f"{v:.2f}x")

    c = 16
    single_empty = ratio(cells, "predict-1", c, "ours", "empty")
    single_sklearn = ratio(cells, "predict-1", c, "ours", "sklearn")
    single_floor = ratio(cells, "predict-1", c, "ours", "floor")
    p99_ours = med([r.p99_ms for r in cells[("predict-1", c, "ours")]])
    p99_empty = med([r.p99_ms for r in cells[("predict-1", c, "empty")]])
    batch_empty = ratio(cells, "predict-1000", c, "ours", "empty")
    v2_batch = ratio(cells, "v2json-1000", c, "ours", "empty")
    v2_json_single = ratio(cells, "v2json-1", c, "ours", "ours", "predict-1")
    v2_bin_single = ratio(cells, "v2bin-1", c, "ours", "ours", "predict-1")
    idle_p99 = med([r.p99_ms for r in extras.idle[16]])
    busy_p99 = med([r.p99_ms for r in extras.training[16]])
    start = med(extras.starts)
    rss_ratio = extras.rss["ours"] / extras.rss["numpy"]
    targets = [
        (
            "single-row /predict vs empty FastAPI",
            ">= 1.5x",
            rng(single_empty),
            med(single_empty) >= 1.5,
        ),
        (
            "single-row /predict vs naive scikit-learn",
            ">= 3x",
            rng(single_sklearn),
            med(single_sklearn) >= 3,
        ),
        (
            "single-row /predict vs the raw-ASGI floor",
            ">= 0.7x",
            rng(single_floor),
            med(single_floor) >= 0.7,
        ),
        (
            "single-row /predict p99 vs empty FastAPI's",
            "no worse",
            f"{p99_ours:.2f} ms vs {p99_empty:.2f} ms",
            p99_ours <= p99_empty,
        ),
        (
            "1,000-row /predict vs empty FastAPI (aim 1.0x)",
            ">= 0.8x",
            rng(batch_empty),
            med(batch_empty) >= 0.8,
        ),
        (
            "1,000-row V2 infer, JSON, vs empty FastAPI fed the same V2 body",
            ">= 1.5x",
            rng(v2_batch),
            med(v2_batch) >= 1.5,
        ),
        (
            "single-row V2 infer, JSON tensors, vs /predict",
            ">= 0.9x",
            rng(v2_json_single),
            med(v2_json_single) >= 0.9,
        ),
        (
            "single-row V2 infer, binary tensors, vs /predict",
            ">= 0.9x",
            rng(v2_bin_single),
            med(v2_bin_single) >= 0.9,
        ),
        (
            "p99 while a training job runs vs idle p99",
            "<= 2x",
            f"{busy_p99:.2f} ms vs {idle_p99:.2f} ms ({busy_p99 / idle_p99:.2f}x)",
            busy_p99 <= 2 * idle_p99,
        ),
        (
            "process start to the first 200 of /predict, stored model",
            "<= 1.0 s",
            f"median {start:.2f} s of {len(extras.starts)} "
            f"({min(extras.starts):.2f}-{max(extras.starts):.2f})",
            start <= 1.0,
        ),
        (
            "idle RSS vs a FastAPI + NumPy app",
            "<= 1.2x",
            f"{extras.rss['ours']:.1f} MiB vs {extras.rss['numpy']:.1f} MiB ({rss_ratio:.2f}x)",
            rss_ratio <= 1.2,
        ),
    ]
    lines += [
        "",
        "| target (c=16 unless said) | goal | this run, median (min-max of rounds) | verdict |",
        "|---|---|---|---|",
    ]
    for name, goal, got, ok in targets:
        lines.append(f"| {name} | {goal} | {got} | {mark(ok)} |")
    control = ratio(cells, CONTROL, c, "ours", "ours", "predict-1")
    lines += [
        "",
        f"A/A control, not a target: ours' single-row /predict run a second time in each "
        f"round, after the single-row V2 cells, over its first run: {rng(control)}. The "
        f"same server and load differ this much by noise alone: a ratio of ours to ours "
        f"that lies this close to its target's line is not told apart from it.",
    ]
    with_grpc = extras.rss["numpy_grpc"]
    lines += [
        "",
        f"Idle RSS beside a FastAPI + NumPy app that also serves gRPC in its process (a "
        f"grpc.aio server with the health service), not a target: {extras.rss['ours']:.1f} "
        f"MiB vs {with_grpc:.1f} MiB ({extras.rss['ours'] / with_grpc:.2f}x).",
    ]
    lines += [
        "",
        "| single-row /predict, ours | c | idle p99 ms | p99 ms, training job running "
        "| idle req/s | req/s, training |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for cc in sorted(extras.idle):
        idle, busy = extras.idle[cc], extras.training[cc]
        lines.append(
            f"| POST /predict | {cc} | {med([r.p99_ms for r in idle]):.2f} | "
            f"{med([r.p99_ms for r in busy]):.2f} | {med([r.rps for r in idle]):.0f} | "
            f"{med([r.rps for r in busy]):.0f} |"
        )
    smoke = " SMOKE RUN: a few seconds, figures meaningless." if args.smoke else ""
    lines += [
        "",
        f"Conditions:{smoke} {args.rounds} interleaved rounds of {args.seconds:.0f} s per cell "
        "(each round: every concurrency in turn, every load and server at it, so that the "
        "cells a ratio compares run close in time), after a 1 s warm-up of each; "
        "wrk 1 thread, c keep-alive connections, `bench/post.lua`; req/s and latencies are "
        "medians over rounds, ratios medians of per-round ratios. Every server is one uvicorn "
        "worker (httptools, uvloop) pinned with sched_setaffinity to the last core, wrk to the "
        "other; the machine is shared with other agents' work, so absolute figures move "
        "between runs while side-by-side ratios hold better. Ours runs as shipped: log level "
        "info with one access line per request (to a log file), metrics, request ids, the "
        "token set. The reference servers run without access log (`--no-access-log "
        "--log-level warning`). The empty FastAPI app is fed the same body as ours in each "
        "load (the V2 JSON body for V2 loads). The training rounds alternate with idle rounds "
        f"({len(extras.idle[16])} each, {args.seconds:.0f} s per cell); the training child "
        "inherits the server's core and runs at the lowest CPU priority. Idle RSS after 200 "
        "requests. Command: `.venv/bin/python bench/serve.py --out bench/out/serve.md` (run "
        "by `make bench`).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per cell")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", help="write the Markdown section here")
    parser.add_argument("--smoke", action="store_true", help="1 round of 1 s at c=16: it runs")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args()
    args.concurrency = CONCURRENCY
    if args.smoke:  # every load, one concurrency, no warm-up: about 20 s
        args.seconds, args.rounds, args.concurrency = 1.0, 1, (16,)
    cases, cells, extras = run(args)
    write_out(args.out, report(cases, cells, extras, args))


if __name__ == "__main__":
    main()
