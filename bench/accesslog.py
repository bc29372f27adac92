"""Access-log benchmark: what one access line costs, piece by piece.

    .venv/bin/python bench/accesslog.py [--lines 20000] [--out PATH] [--smoke]

Every figure is CPU time per line (``time.process_time``, so other work on the machine
does not count), the best of several repeats, writing to a real file:

- the stdlib ``logging`` path the service used before: ``logger.info(..., extra=...)``
  through the service's ``TextFormatter`` and a ``StreamHandler``, in total and taken
  apart (making the record, formatting it, one write + flush per line);
- the service's ``AccessLog`` now: the line formatted directly, written in batches;
- in-process, one single-row ``POST /predict`` through the whole ASGI app at log level
  info (one access line) and warning (none): the line's share of a request.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import write_out  # noqa: E402

from service.logs import AccessLog, JsonFormatter, TextFormatter  # noqa: E402

REQUEST_ID = "3f1c0e5e9b7d4a52a6c4b0e1d2f3a4b5"
EXTRA = {
    "request_id": REQUEST_ID,
    "method": "POST",
    "path": "/predict",
    "route": "/predict",
    "status": 200,
    "duration_ms": 0.123,
}


def per_line(fn: Callable[[], object], lines: int, repeats: int) -> float:
    """Best CPU microseconds per call of ``fn`` over ``repeats`` runs of ``lines`` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(lines):
            fn()
        best = min(best, (time.process_time() - started) / lines)
    return best * 1e6


def stdlib_costs(work: Path, fmt: str, lines: int, repeats: int) -> dict[str, float]:
    """The logging path the service used before, in total and taken apart."""
    stream = (work / f"stdlib-{fmt}.log").open("w")
    logger = logging.Logger(f"bench.access.{fmt}")
    handler = logging.StreamHandler(stream)
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    args = ("%s %s %d %.2fms", "POST", "/predict", 200, 0.123)

    def total() -> None:
        logger.info(*args, extra=EXTRA)

    def record() -> logging.LogRecord:
        return logger.makeRecord(
            logger.name, logging.INFO, "", 0, args[0], args[1:], None, None, EXTRA
        )

    made = record()
    text = formatter.format(made) + "\n"

    def write() -> None:
        stream.write(text)
        stream.flush()

    costs = {
        "total": per_line(total, lines, repeats),
        "record": per_line(record, lines, repeats),
        "format": per_line(lambda: formatter.format(made), lines, repeats),
        "write": per_line(write, lines, repeats),
    }
    stream.close()
    return costs


def access_costs(work: Path, fmt: str, lines: int, repeats: int) -> dict[str, float]:
    """The service's AccessLog: a formatted line queued, batches written (the flushes
    that a running server's timer would do are counted here, inline)."""
    stream = (work / f"access-{fmt}.log").open("w")
    log = AccessLog()
    log.configure(stream, fmt)

    def total() -> None:
        log.write("POST", "/predict", "/predict", 200, 0.000123, REQUEST_ID)

    async def in_a_loop() -> float:  # as in the server: batches, timer flushes
        return per_line(total, lines, repeats)

    costs = {"total": asyncio.run(in_a_loop())}
    log.flush()
    stream.close()
    return costs


def request_cost(work: Path, level: str, requests: int, repeats: int) -> float:
    """CPU microseconds of one single-row POST /predict through the whole ASGI app."""
    os.environ.update(
        BACKPROP_MODEL_DIR=str(work / "models"),
        BACKPROP_API_TOKEN="bench",
        BACKPROP_LOG_LEVEL=level,
        PROMETHEUS_MULTIPROC_DIR=str(work / "metrics"),
    )
    (work / "metrics").mkdir(exist_ok=True)
    from service.app import create_app

    app = create_app()
    body = b'{"instances": [[5.1, 3.5]]}'
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"content-length", b"27"),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "query_string": b"",
        "headers": headers,
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def drive() -> float:
        async with app.router.lifespan_context(app):
            deadline = time.monotonic() + 120
            while app.state.cache.active is None:  # an empty store trains the default model
                if time.monotonic() > deadline:
                    raise SystemExit("bench: no model after 120 s")
                await asyncio.sleep(0.05)
            best = float("inf")
            for _ in range(repeats + 1):  # the first run warms up
                started = time.process_time()
                for _ in range(requests):
                    sent.clear()
                    await app(dict(scope), receive, send)
                best = min(best, (time.process_time() - started) / requests)
            assert sent[0]["status"] == 200, sent
            return best * 1e6

    return asyncio.run(drive())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", help="write the Markdown section here")
    parser.add_argument("--smoke", action="store_true", help="a few hundred lines: it runs")
    args = parser.parse_args()
    if args.smoke:
        args.lines, args.repeats = 500, 2
    work = Path(tempfile.mkdtemp(prefix="bench-access-"))
    fd = os.open(work / "server.log", os.O_WRONLY | os.O_CREAT)  # the app logs to stderr
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        rows = []
        for fmt in ("text", "json"):
            before = stdlib_costs(work, fmt, args.lines, args.repeats)
            now = access_costs(work, fmt, args.lines, args.repeats)
            rows.append((fmt, before, now))
        requests = max(200, args.lines // 10)
        per_request = {
            level: request_cost(work, level, requests, args.repeats)
            for level in ("info", "warning")
        }
    finally:
        os.dup2(saved, 2)
    lines = [
        "## Access log",
        "",
        "| access line (CPU us per line) | format | making the record | formatting | "
        "one write + flush per line | total |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for fmt, before, now in rows:
        lines.append(
            f"| before: stdlib logging, StreamHandler | {fmt} | {before['record']:.2f} | "
            f"{before['format']:.2f} | {before['write']:.2f} | {before['total']:.2f} |"
        )
        lines.append(
            f"| now: service.logs.AccessLog, batched | {fmt} | - | - | "
            f"1 write per <= 256 lines | **{now['total']:.2f}** |"
        )
    info, warning = per_request["info"], per_request["warning"]
    lines += [
        "",
        "| single-row POST /predict in-process through the ASGI app | CPU us per request |",
        "|---|---:|",
        f"| log level info (the default: one access line) | {info:.1f} |",
        f"| log level warning (no access line) | {warning:.1f} |",
        f"| the access line's share | {max(info - warning, 0.0):.1f} "
        f"({max(info - warning, 0.0) / info:.0%}) |",
        "",
        ("SMOKE RUN: figures meaningless. " if args.smoke else "")
        + f"CPU time (process_time) per line, best of {args.repeats} runs of {args.lines} "
        f"lines, to a file in {tempfile.gettempdir()}; the in-process request figures are the "
        f"best of {args.repeats} runs of {requests} requests (metrics on, as shipped). "
        "Command: `.venv/bin/python bench/accesslog.py --out bench/out/accesslog.md`.",
    ]
    write_out(args.out, "\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
