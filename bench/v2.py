"""V2 benchmark: single-row Open Inference Protocol infer requests/s (JSON tensors, and
binary tensors as the Triton client sends them by default) beside native /predict.

    .venv/bin/python bench/v2.py [--seconds 3] [--rounds 5] [--no-write]

One live 1-worker server on an empty store (it trains the default model at start),
the same closed-loop keep-alive client (bench/loadgen.py) and the same concurrency for
every case; rounds interleave the cases so machine noise hits them alike. Figures are
the median round; the ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import struct
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, median_of, pin, run_load, summary  # noqa: E402
from results import write_section  # noqa: E402
from serve import free_port, start_service, stop, wait_status  # noqa: E402

ROW = [5.1, 3.5]
INFER = "/v2/models/iris-net/infer"
TARGET = 0.90  # V2 within 10% of /predict
NATIVE = "native /predict (JSON)"
Key = tuple[str, int]  # (case, concurrency)


def raw_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 POST as bytes (no Content-Type unless given, as tritonclient sends)."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def cases() -> dict[str, bytes]:
    """The three single-row requests, by name."""
    predict = orjson.dumps({"instances": [ROW]})
    as_json = orjson.dumps(
        {"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", "data": ROW}]}
    )
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [1, 2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 8},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    tensor = struct.pack("<2f", *ROW)  # FP32, little-endian, row-major
    return {
        NATIVE: raw_request("/predict", predict, {"Content-Type": "application/json"}),
        "V2 infer, JSON tensors": raw_request(INFER, as_json, {}),
        "V2 infer, binary tensors": raw_request(
            INFER, header + tensor, {"Inference-Header-Content-Length": str(len(header))}
        ),
    }


@dataclass(frozen=True)
class Round:
    """One timed run: the client's figures and the server's CPU time per request."""

    load: LoadResult
    server_cpu_us: float
    server_busy: float  # the server's CPU seconds per wall second (1.0: one core saturated)


def timed(pid: int, port: int, raw: bytes, concurrency: int, seconds: float) -> Round:
    before = cpu_seconds(pid)
    load = run_load(port, raw, concurrency, seconds)
    used = cpu_seconds(pid) - before
    return Round(load, used / max(load.requests, 1) * 1e6, used / load.seconds)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (one uvicorn worker runs in it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check(port: int, requests: dict[str, bytes]) -> None:
    """Each case answers 200 before it is timed."""
    for name, raw in requests.items():
        head, _, body = raw.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        path = head.split(b" ")[1].decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=body,
            method="POST",
            headers={k: v for k, v in fields.items() if k not in ("Host", "Content-Length")},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200, (name, answer.status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    requests = cases()
    rounds = measure(requests, args.seconds, args.rounds)
    table = report(rounds, args)
    sys.stdout.write(table + "\n")
    for (name, concurrency), runs in rounds.items():
        sys.stdout.write(
            f"{name:28s} c={concurrency:<3d}{summary(median_of([r.load for r in runs]))}\n"
        )
    if not args.no_write:
        write_section("V2 inference", table)


def measure(requests: dict[str, bytes], seconds: float, n_rounds: int) -> dict[Key, list[Round]]:
    """Every case at c=1 and c=16, ``n_rounds`` interleaved rounds each, on one server."""
    rounds: dict[Key, list[Round]] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-v2-"))
    try:
        port = free_port()
        proc = start_service(work / "models", port)  # an empty store: trains the default model
        try:
            wait_status(port, "/health/ready")
            pin(proc.pid)
            check(port, requests)
            for raw in requests.values():
                run_load(port, raw, 16, 0.5)  # warm-up
            for concurrency in (1, 16):
                for r in range(n_rounds):
                    names = list(requests)
                    for name in names[r % len(names) :] + names[: r % len(names)]:  # rotated
                        run = timed(proc.pid, port, requests[name], concurrency, seconds)
                        rounds.setdefault((name, concurrency), []).append(run)
        finally:
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rounds


def report(rounds: dict[Key, list[Round]], args: argparse.Namespace) -> str:
    lines = [
        "| single-row request | c | req/s | vs /predict | p50 ms | p99 ms "
        "| server CPU per request | server busy | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for (name, concurrency), runs in rounds.items():
        native = rounds[(NATIVE, concurrency)]
        ratio = statistics.median(
            r.load.rps / n.load.rps for r, n in zip(runs, native, strict=True)
        )
        best = median_of([r.load for r in runs])
        cpu = statistics.median(r.server_cpu_us for r in runs)
        busy = statistics.median(r.server_busy for r in runs)
        lines.append(
            f"| {name} | {concurrency} | {best.rps:.0f} | {ratio:.2f}x | "
            f"{best.percentile(0.5) * 1000:.2f} | {best.percentile(0.99) * 1000:.2f} | "
            f"{cpu:.0f} us | {busy:.0%} | {sum(r.load.errors for r in runs)} |"
        )
        if name != NATIVE:
            verdicts.append(ratio >= TARGET)
    lines += [
        "",
        f"V2 within 10% of /predict (req/s) in every row: **{'yes' if all(verdicts) else 'no'}**. "
        f"One uvicorn worker; the same keep-alive client (bench/loadgen.py) and concurrency "
        f"for each case; {args.rounds} rounds of {args.seconds:.0f} s with the cases "
        f"interleaved; req/s and latencies from the median round, ratio = median of the "
        f"per-round ratios; server CPU from /proc (its share of one core in 'server busy'); "
        f"server pinned to one core, client to the other. "
        f"Python {platform.python_version()}, {os.cpu_count()} cores.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
