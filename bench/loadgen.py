"""A small closed-loop HTTP/1.1 load generator: N keep-alive connections on loopback,
each sending the same request as soon as the previous answer has arrived.

Raw asyncio streams on uvloop keep the client cheap, so that on a 2-core machine the
server (one worker, one core) rather than the client is what is measured.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def request_bytes(method: str, path: str, body: bytes = b"", host: str = "127.0.0.1") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if body or method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _connection(
    host: str, port: int, request: bytes, stop_at: float, latencies: list[float], errors: list[int]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
            done += 1
    finally:
        writer.close()
    return done


async def _run(
    host: str, port: int, request: bytes, concurrency: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    stop_at = started + seconds
    counts = await asyncio.gather(
        *(_connection(host, port, request, stop_at, latencies, errors) for _ in range(concurrency))
    )
    return LoadResult(sum(counts), len(errors), time.perf_counter() - started, latencies)


def run_load(
    port: int, request: bytes, concurrency: int, seconds: float, host: str = "127.0.0.1"
) -> LoadResult:
    """Drive the server for ``seconds`` with ``concurrency`` connections."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    return runner(_run(host, port, request, concurrency, seconds))


def median_of(results: list[LoadResult]) -> LoadResult:
    """The round with the median requests/s."""
    ordered = sorted(results, key=lambda r: r.rps)
    return ordered[len(ordered) // 2]


def pin(server_pid: int) -> None:
    """Server on the last core, client on the others: they stop trading places."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:
        os.sched_setaffinity(server_pid, {cores[-1]})
        os.sched_setaffinity(0, set(cores[:-1]))


def summary(result: LoadResult) -> str:
    p50, p99 = result.percentile(0.5) * 1000, result.percentile(0.99) * 1000
    return f"{result.rps:9.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  errors {result.errors}"


__all__ = ["LoadResult", "median_of", "pin", "request_bytes", "run_load", "statistics", "summary"]
