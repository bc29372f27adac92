"""wrk, Debian's HTTP load generator, driven with ``bench/post.lua``.

    result = run_wrk(port, "POST", "/predict", body_path, concurrency=16, seconds=3)

One wrk thread (the client has one core), ``concurrency`` keep-alive connections,
closed loop; the Lua script's ``done`` prints requests, errors and latency percentiles.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson

SCRIPT = Path(__file__).with_name("post.lua")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int  # non-2xx/3xx answers plus socket errors
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian (apt-get, as root) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit("bench: wrk is missing; install Debian's package: apt-get install wrk")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    for command in (
        ["apt-get", *lock, "update", "-qq"],
        ["apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", "wrk"],
    ):
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=1200)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: apt-get installed wrk but it is not on PATH")
    return found


def run_wrk(
    port: int,
    method: str,
    path: str,
    body: Path | None,
    *,
    concurrency: int,
    seconds: float,
    headers: tuple[str, ...] = (),
    cpus: set[int] | None = None,
) -> WrkResult:
    """Drive ``http://127.0.0.1:port{path}`` for ``seconds``; ``cpus`` pins the client."""
    command = [
        ensure_wrk(),
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        f"http://127.0.0.1:{port}{path}",
        "--",
        method,
        str(body) if body is not None else "-",
        *headers,
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = orjson.loads(done.stdout.strip().splitlines()[-1])
    return WrkResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        errors=summary["status_errors"] + summary["socket_errors"],
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
    )
