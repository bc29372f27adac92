"""gRPC benchmark: the Open Inference Protocol over gRPC beside REST V2 and /predict,
single-row and 1,000-row requests.

    .venv/bin/python bench/grpc_infer.py [--seconds 2] [--rounds 5] [--smoke] [--out PATH]

One live 1-worker server (HTTP and gRPC on free ports), pinned to one core, the
clients on the other. HTTP cases use the closed-loop keep-alive client of
bench/loadgen.py; gRPC cases a grpc.aio client with the same number of calls in
flight on one channel (requests serialized once, answers left as bytes, so the
client costs as little as it can). Rounds interleave the cases; figures are the
median round, ratios the median of the per-round ratios; 'server busy' is the
server's CPU seconds per wall second from /proc (100%: its core is saturated).

--smoke: one short round, nothing written unless --out is given. --out PATH: write
the section to PATH instead of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from loadgen import LoadResult, median_of, pin, run_load  # noqa: E402
from results import write_section  # noqa: E402
from serve import free_port, service_env, stop, wait_200  # noqa: E402

from service.rpc import grpc_predict_v2_pb2 as pb  # noqa: E402

MODEL = "iris-net"
INFER = f"/v2/models/{MODEL}/infer"
METHOD = "/inference.GRPCInferenceService/ModelInfer"
CONCURRENCY = 16
TARGET = 1.5  # 1,000-row gRPC infer (raw) against 1,000-row /predict
HEADING = "gRPC inference"
PREDICT = "/predict (JSON)"
GRPC_RAW = "gRPC infer, raw contents"


def rows(n: int) -> np.ndarray:
    """``n`` rows of the default model's two features. Shapes: (n, 2)."""
    return np.random.default_rng(n).normal((5.8, 3.0), (0.8, 0.4), (n, 2))


def http_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def predict_request(X: np.ndarray) -> bytes:
    body = orjson.dumps({"instances": X.tolist()})
    return http_request("/predict", body, {"Content-Type": "application/json"})


def v2_binary_request(X: np.ndarray) -> bytes:
    """As tritonclient.http sends it: FP32 binary tensor in, binary outputs asked for."""
    blob = X.astype("<f4").tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": list(X.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(blob)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    return http_request(INFER, header + blob, {"Inference-Header-Content-Length": str(len(header))})


def grpc_request(X: np.ndarray, raw: bool) -> bytes:
    """A serialized ModelInferRequest: FP32 raw contents (tritonclient's way) or typed."""
    request = pb.ModelInferRequest(model_name=MODEL)
    tensor = request.inputs.add(name="features", datatype="FP32", shape=list(X.shape))
    if raw:
        request.raw_input_contents.append(X.astype("<f4").tobytes())
    else:
        tensor.contents.fp32_contents.extend(X.astype(np.float32).ravel().tolist())
    return bytes(request.SerializeToString())


@dataclass(frozen=True)
class Case:
    name: str
    rows: int
    run: Callable[[float], LoadResult]


@dataclass(frozen=True)
class Round:
    load: LoadResult
    busy: float  # server CPU seconds per wall second
    cpu_us: float  # server CPU time per request


async def _grpc_load(target: str, request: bytes, concurrency: int, seconds: float) -> LoadResult:
    options = [("grpc.max_receive_message_length", 64 << 20)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        call = channel.unary_unary(METHOD)  # bytes in, bytes out: no client-side protobuf
        latencies: list[float] = []
        errors: list[str] = []
        started = time.perf_counter()
        stop_at = started + seconds

        async def caller() -> None:
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                try:
                    await call(request, timeout=30)
                except grpc.RpcError as exc:
                    errors.append(str(exc))
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), len(errors), elapsed, latencies)


def grpc_load(target: str, request: bytes, concurrency: int, seconds: float) -> LoadResult:
    return asyncio.run(_grpc_load(target, request, concurrency, seconds))


def check_grpc(target: str, request: bytes, n: int) -> None:
    """The request is answered with n labels before it is timed."""
    with grpc.insecure_channel(
        target, options=[("grpc.max_receive_message_length", 64 << 20)]
    ) as ch:
        answer = pb.ModelInferResponse.FromString(ch.unary_unary(METHOD)(request, timeout=30))
    assert [list(o.shape) for o in answer.outputs] == [[n, 2], [n]], answer.outputs


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cases(http_port: int, target: str) -> list[Case]:
    found: list[Case] = []
    for n in (1, 1000):
        X = rows(n)
        predict, v2 = predict_request(X), v2_binary_request(X)
        raw, typed = grpc_request(X, True), grpc_request(X, False)
        check_grpc(target, raw, n)
        check_grpc(target, typed, n)
        found += [
            Case(PREDICT, n, lambda s, r=predict: run_load(http_port, r, CONCURRENCY, s)),
            Case(
                "REST V2 infer, binary", n, lambda s, r=v2: run_load(http_port, r, CONCURRENCY, s)
            ),
            Case(GRPC_RAW, n, lambda s, r=raw: grpc_load(target, r, CONCURRENCY, s)),
            Case(
                "gRPC infer, typed contents",
                n,
                lambda s, r=typed: grpc_load(target, r, CONCURRENCY, s),
            ),
        ]
    return found


def start_service(store: Path, port: int, grpc_port: int) -> subprocess.Popen[bytes]:
    """Ours as shipped (log level info, metrics, token), with gRPC on ``grpc_port``."""
    env = service_env(store) | {"BACKPROP_GRPC_PORT": str(grpc_port)}
    return subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port), "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(seconds: float, n_rounds: int) -> dict[tuple[str, int], list[Round]]:
    work = Path(tempfile.mkdtemp(prefix="bench-grpc-"))
    rounds: dict[tuple[str, int], list[Round]] = {}
    try:
        http_port, grpc_port = free_port(), free_port()
        while grpc_port == http_port:
            grpc_port = free_port()
        proc = start_service(work / "models", http_port, grpc_port)  # trains the default model
        try:
            wait_200(http_port, "GET", "/health/ready", None)
            pin(proc.pid)
            target = f"127.0.0.1:{grpc_port}"
            todo = cases(http_port, target)
            for case in todo:
                case.run(0.3)  # warm-up
            for r in range(n_rounds):
                for case in todo[r % len(todo) :] + todo[: r % len(todo)]:  # rotated
                    before = cpu_seconds(proc.pid)
                    load = case.run(seconds)
                    used = cpu_seconds(proc.pid) - before
                    run = Round(load, used / load.seconds, used / max(load.requests, 1) * 1e6)
                    rounds.setdefault((case.name, case.rows), []).append(run)
        finally:
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rounds


def report(rounds: dict[tuple[str, int], list[Round]], seconds: float, n_rounds: int) -> str:
    lines = [
        f"| request (c={CONCURRENCY}) | rows | req/s | rows/s | vs /predict | p50 ms | p99 ms "
        "| server busy | server CPU per request | capacity vs /predict | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ratios: dict[tuple[str, int], float] = {}
    capacity: dict[tuple[str, int], float] = {}
    for (name, n), runs in rounds.items():
        native = rounds[(PREDICT, n)]
        ratio = statistics.median(
            r.load.rps / p.load.rps for r, p in zip(runs, native, strict=True)
        )
        ratios[(name, n)] = ratio
        best = median_of([r.load for r in runs])
        busy = statistics.median(r.busy for r in runs)
        cpu = statistics.median(r.cpu_us for r in runs)
        capacity[(name, n)] = statistics.median(r.cpu_us for r in native) / cpu
        lines.append(
            f"| {name} | {n:,} | {best.rps:.0f} | {best.rps * n:,.0f} | {ratio:.2f}x | "
            f"{best.percentile(0.5) * 1000:.2f} | {best.percentile(0.99) * 1000:.2f} | "
            f"{busy:.0%} | {cpu:,.0f} us | {capacity[(name, n)]:.2f}x | "
            f"{sum(r.load.errors for r in runs)} |"
        )
    met = min(ratios[(GRPC_RAW, 1000)], capacity[(GRPC_RAW, 1000)]) >= TARGET
    lines += [
        "",
        f"1,000-row gRPC infer (raw contents) vs 1,000-row /predict: "
        f"**{ratios[(GRPC_RAW, 1000)]:.2f}x** req/s, {capacity[(GRPC_RAW, 1000)]:.2f}x by "
        f"server CPU per request (target >= {TARGET}x: {'met' if met else 'not met'}); "
        f"single-row gRPC vs /predict: {ratios[(GRPC_RAW, 1)]:.2f}x req/s, "
        f"{capacity[(GRPC_RAW, 1)]:.2f}x by CPU per request. 'capacity' = /predict's server "
        f"CPU per request over the case's (what one saturated core would serve). "
        f"One uvicorn worker (gRPC on its event loop) pinned "
        f"to one core, the clients on the other; {n_rounds} rounds of {seconds:g} s, cases "
        f"interleaved; req/s and latencies from the median round, ratios = median of "
        f"per-round ratios; FP32 inputs; as shipped. Python {platform.python_version()}, "
        f"grpcio {grpc.__version__}, {os.cpu_count()} cores.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one short round, to check it runs")
    parser.add_argument("--out", type=Path, help="write the section here, not bench/RESULTS.md")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.rounds = 0.3, 1
    rounds = measure(args.seconds, args.rounds)
    table = report(rounds, args.seconds, args.rounds)
    sys.stdout.write(table + "\n")
    if args.out is not None:
        args.out.write_text(f"## {HEADING}\n\n{table}\n")
    elif not args.smoke:
        write_section(HEADING, table)


if __name__ == "__main__":
    main()
