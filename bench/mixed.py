"""Mixed-load figure: two workers, 8 concurrent clients for 60 s calling predict (one
row and a batch of 64), backprop traces, metadata, training without wait, activation
and cancellation, as tests/service/test_load.py does. Records requests served, p99
latency by route and errors (which must be 0).

    .venv/bin/python bench/mixed.py [--seconds 60] [--smoke] [--out PATH] [--no-write]

``--smoke`` runs a few seconds; ``--out`` writes the markdown table to PATH as well.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import write_section  # noqa: E402

from tests.service import mixedload  # noqa: E402
from tests.service.server import free_port, start_server  # noqa: E402

HEADING = "Mixed load (issue 10)"


def table(tally: mixedload.Tally, seconds: float, clients: int) -> str:
    errors = len(tally.errors) + sum(n for k, n in tally.statuses.items() if k[2] >= 500)
    lines = [
        f"{clients} clients, 2 workers, {seconds:.0f} s on {platform.machine()} "
        f"({platform.python_implementation()} {platform.python_version()}), loopback.",
        "",
        f"Requests served: **{tally.requests}** ({tally.requests / seconds:.0f}/s); "
        f"errors (5xx or dropped connections): **{errors}**.",
        "",
        "| route | requests | p99 (ms) | statuses |",
        "|---|---:|---:|---|",
    ]
    for route in sorted(tally.latencies):
        method, path = route.split(" ", 1)
        statuses = {s: n for (r, m, s), n in tally.statuses.items() if (m, r) == (method, path)}
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        p99 = tally.p99(route) * 1000
        lines.append(f"| `{route}` | {len(tally.latencies[route])} | {p99:.1f} | {shown} |")
    lines += [
        "",
        "409 (activating a version that failed checks, cancelling a finished job) and",
        "429 (a full training queue) are answers the clients asked for, not errors.",
        "`DELETE /train/{job_id}` waits up to 3 s for a running job to stop (documented),",
        "so its p99 is that wait. Latencies include the client threads' own cost and",
        "whatever else the machine runs: read them as a bound, not a speed figure.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="a few seconds, to check it runs")
    parser.add_argument("--out", type=Path, help="also write the markdown table here")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    args = parser.parse_args()
    seconds = 4.0 if args.smoke else args.seconds
    work = Path(tempfile.mkdtemp(prefix="bench-mixed-"))
    try:
        # gRPC on, as shipped (the test helper turns it off), on a free port
        env = {"BACKPROP_TRAIN_QUEUE_SIZE": "4", "BACKPROP_GRPC_PORT": str(free_port())}
        server = start_server(work / "models", work, workers=2, env=env)
        try:
            server.wait_ready(120)
            tally = mixedload.run(server.url, server.token, seconds, clients=args.clients)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = table(tally, seconds, args.clients)
    print(text)
    if args.out:
        args.out.write_text(f"## {HEADING}\n\n{text}\n")  # one titled section, as make bench wants
    if not args.smoke and not args.no_write:
        write_section(HEADING, text)
    if tally.errors or tally.server_errors() or not tally.requests:
        sys.exit(f"errors: {tally.errors[:3]} {tally.server_errors()}")


if __name__ == "__main__":
    main()
