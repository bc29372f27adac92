"""Service benchmark: single-row /predict latency and throughput (concurrency 1 and 16,
idle and while a training job runs), start-to-ready time, idle memory per worker, and
the same figures for two reference apps measured the same way in the same run.

    .venv/bin/python bench/serve.py [--seconds 3] [--rounds 3] [--no-write]

Every figure is the median of several rounds; ratios compare numbers of this run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, median_of, request_bytes, run_load, summary  # noqa: E402
from results import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
BODY = b'{"instances": [[5.1, 3.5]]}'
LONG_JOB = {"optimizer": "sgd", "batch_size": 1, "max_epochs": 100000, "tolerance": 0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, method: str, path: str, body: dict[str, object] | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def wait_status(port: int, path: str, timeout: float = 60) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise TimeoutError(path)


def start_service(store: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BACKPROP_MODEL_DIR": str(store),
        "BACKPROP_API_TOKEN": TOKEN,
        "BACKPROP_LOG_LEVEL": "warning",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "service", "--port", str(port), "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_baseline(name: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"bench.baselines:{name}",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
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


def measure(port: int, concurrency: int, seconds: float, rounds: int) -> LoadResult:
    request = request_bytes("POST", "/predict", BODY)
    run_load(port, request, concurrency, 0.5)  # warm-up
    return median_of([run_load(port, request, concurrency, seconds) for _ in range(rounds)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    rows: list[tuple[str, LoadResult]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    store = work / "models"
    try:
        port = free_port()
        proc = start_service(store, port)  # an empty store: trains the default model
        first_ready = wait_status(port, "/health/ready")
        stop(proc)

        starts = []
        for _ in range(5):
            port = free_port()
            proc = start_service(store, port)
            starts.append(wait_status(port, "/health/ready"))
            stop(proc)

        port = free_port()
        proc = start_service(store, port)
        wait_status(port, "/health/ready")
        for c in (1, 16):
            rows.append(
                (f"service /predict, c={c}, idle", measure(port, c, args.seconds, args.rounds))
            )
        service_rss = rss_mib(proc.pid)
        job = call(port, "POST", "/train", LONG_JOB)
        while call(port, "GET", f"/train/{job['job_id']}")["status"] != "running":
            time.sleep(0.05)
        for c in (1, 16):
            rows.append(
                (f"service /predict, c={c}, training", measure(port, c, args.seconds, args.rounds))
            )
        call(port, "DELETE", f"/train/{job['job_id']}")
        stop(proc)

        baseline_rss = {}
        for name in ("empty", "numpy"):
            port = free_port()
            proc = start_baseline(name, port)
            wait_status(port, "/docs")
            for c in (1, 16):
                rows.append(
                    (f"baseline FastAPI {name}, c={c}", measure(port, c, args.seconds, args.rounds))
                )
            baseline_rss[name] = rss_mib(proc.pid)
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    by_name = {name: result for name, result in rows}
    lines = ["| case | req/s | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|"]
    for name, result in rows:
        lines.append(
            f"| {name} | {result.rps:.0f} | {result.percentile(0.5) * 1000:.2f} | "
            f"{result.percentile(0.99) * 1000:.2f} | {result.errors} |"
        )
    service16 = by_name["service /predict, c=16, idle"].rps
    empty16 = by_name["baseline FastAPI empty, c=16"].rps
    numpy16 = by_name["baseline FastAPI numpy, c=16"].rps
    lines += [
        "",
        f"- first start on an empty store (trains the default model) to ready: {first_ready:.2f} s",
        f"- start to ready with an existing model: median {statistics.median(starts):.2f} s "
        f"(of {len(starts)})",
        f"- /predict c=16 vs empty FastAPI endpoint: **{service16 / empty16:.2f}x** "
        f"(target >= 1.5x); vs FastAPI + NumPy: {service16 / numpy16:.2f}x",
        f"- idle RSS per worker: service {service_rss:.1f} MiB, FastAPI + NumPy "
        f"{baseline_rss['numpy']:.1f} MiB: **{service_rss / baseline_rss['numpy']:.2f}x** "
        f"(target <= 1.2x)",
        "",
        f"One uvicorn worker; client: {args.rounds} rounds of {args.seconds:.0f} s, median "
        f"round; single-row body; log level warning (no access line), like the baselines; "
        f"Python {platform.python_version()}, {os.cpu_count()} cores.",
    ]
    table = "\n".join(lines)
    sys.stdout.write(table + "\n")
    for name, result in rows:
        sys.stdout.write(f"{name:40s} {summary(result)}\n")
    if not args.no_write:
        write_section("Service", table)


if __name__ == "__main__":
    main()
