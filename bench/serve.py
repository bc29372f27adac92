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

from loadgen import LoadResult, median_of, pin, request_bytes, run_load  # noqa: E402
from results import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
BODY = b'{"instances": [[5.1, 3.5]]}'
ALL_CORES = frozenset(os.sched_getaffinity(0))
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


def start_service(store: Path, port: int, grpc_port: int = 0) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BACKPROP_MODEL_DIR": str(store),
        "BACKPROP_API_TOKEN": TOKEN,
        "BACKPROP_LOG_LEVEL": "warning",
        "BACKPROP_GRPC_PORT": str(grpc_port),  # 0: off, never the fixed default 8001
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


def measure(port: int, concurrency: int, seconds: float) -> LoadResult:
    return run_load(port, request_bytes("POST", "/predict", BODY), concurrency, seconds)


def interleaved(
    ports: dict[str, int], seconds: float, rounds: int
) -> dict[tuple[str, int], list[LoadResult]]:
    """Every server at c=1 and c=16, in rounds that take the servers in turn, so that
    machine noise falls on all of them alike."""
    results: dict[tuple[str, int], list[LoadResult]] = {}
    for port in ports.values():  # warm-up
        measure(port, 16, 0.5)
    for _ in range(rounds):
        for concurrency in (1, 16):
            for name, port in ports.items():
                results.setdefault((name, concurrency), []).append(
                    measure(port, concurrency, seconds)
                )
    return results


def ratio(results: dict[tuple[str, int], list[LoadResult]], a: str, b: str, c: int) -> float:
    """Median over rounds of a's req/s over b's."""
    pairs = zip(results[(a, c)], results[(b, c)], strict=True)
    return statistics.median(x.rps / y.rps for x, y in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    store = work / "models"
    procs: dict[str, subprocess.Popen[bytes]] = {}
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

        ports = {name: free_port() for name in ("service", "empty", "numpy")}
        procs["service"] = start_service(store, ports["service"])
        wait_status(ports["service"], "/health/ready")
        for name in ("empty", "numpy"):
            procs[name] = start_baseline(name, ports[name])
            wait_status(ports[name], "/docs")
        for proc in procs.values():
            pin(proc.pid)  # every server on the same core, the client on the other(s)
        results = interleaved(ports, args.seconds, args.rounds)
        rss = {name: rss_mib(proc.pid) for name, proc in procs.items()}

        service_port = ports["service"]
        # The training process inherits the server's affinity; let the two use every
        # core, as they would unpinned, so the job does not just halve the server's core.
        os.sched_setaffinity(procs["service"].pid, os.sched_getaffinity(0) | {max(ALL_CORES)})
        job = call(service_port, "POST", "/train", LONG_JOB)
        while call(service_port, "GET", f"/train/{job['job_id']}")["status"] != "running":
            time.sleep(0.05)
        training = interleaved({"service, training": service_port}, args.seconds, args.rounds)
        call(service_port, "DELETE", f"/train/{job['job_id']}")
        results.update(training)
    finally:
        for proc in procs.values():
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)

    labels = {
        "service": "service /predict, idle",
        "service, training": "service /predict, training job running",
        "empty": "baseline: FastAPI, pydantic body, constant answer",
        "numpy": "baseline: FastAPI + NumPy forward pass",
    }
    lines = ["| case | c | req/s | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|"]
    for (name, c), rounds in results.items():
        median = median_of(rounds)
        lines.append(
            f"| {labels[name]} | {c} | {median.rps:.0f} | {median.percentile(0.5) * 1000:.2f} | "
            f"{median.percentile(0.99) * 1000:.2f} | {sum(r.errors for r in rounds)} |"
        )
    vs_empty = ratio(results, "service", "empty", 16)
    lines += [
        "",
        f"- first start on an empty store (trains the default model) to ready: {first_ready:.2f} s",
        f"- start to ready with an existing model: median {statistics.median(starts):.2f} s "
        f"(of {len(starts)})",
        f"- /predict vs the empty FastAPI endpoint: c=16 **{vs_empty:.2f}x**, c=1 "
        f"{ratio(results, 'service', 'empty', 1):.2f}x (target >= 1.5x); vs FastAPI + NumPy: "
        f"c=16 {ratio(results, 'service', 'numpy', 16):.2f}x",
        f"- idle RSS per worker: service {rss['service']:.1f} MiB, FastAPI + NumPy "
        f"{rss['numpy']:.1f} MiB: **{rss['service'] / rss['numpy']:.2f}x** (target <= 1.2x)",
        "",
        f"One uvicorn worker each, all servers pinned to one core and the client to the other; "
        f"{args.rounds} interleaved rounds of {args.seconds:.0f} s; req/s and latencies from the "
        f"median round, ratios = median of per-round ratios; single-row body; log level warning "
        f"(no access line), like the baselines; Python {platform.python_version()}, "
        f"{os.cpu_count()} cores.",
    ]
    table = "\n".join(lines)
    sys.stdout.write(table + "\n")
    if not args.no_write:
        write_section("Service", table)


if __name__ == "__main__":
    main()
