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
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, median_of, run_load, summary  # noqa: E402
from results import write_section  # noqa: E402
from serve import free_port, start_service, stop, wait_status  # noqa: E402

ROW = [5.1, 3.5]
INFER = "/v2/models/iris-net/infer"
TARGET = 0.90  # V2 within 10% of /predict


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
        "native /predict (JSON)": raw_request(
            "/predict", predict, {"Content-Type": "application/json"}
        ),
        "V2 infer, JSON tensors": raw_request(INFER, as_json, {}),
        "V2 infer, binary tensors": raw_request(
            INFER, header + tensor, {"Inference-Header-Content-Length": str(len(header))}
        ),
    }


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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    requests = cases()
    results: dict[tuple[str, int], list[LoadResult]] = {}
    ratios: dict[tuple[str, int], list[float]] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-v2-"))
    try:
        port = free_port()
        proc = start_service(work / "models", port)
        try:
            wait_status(port, "/health/ready")
            check(port, requests)
            for raw in requests.values():
                run_load(port, raw, 16, 0.5)  # warm-up
            for concurrency in (1, 16):
                for r in range(args.rounds):
                    names = list(requests)
                    names = names[r % len(names) :] + names[: r % len(names)]  # rotate order
                    measured = {
                        n: run_load(port, requests[n], concurrency, args.seconds) for n in names
                    }
                    for name, result in measured.items():
                        results.setdefault((name, concurrency), []).append(result)
                        native = measured["native /predict (JSON)"].rps
                        ratios.setdefault((name, concurrency), []).append(result.rps / native)
        finally:
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "| single-row request | c | req/s | p50 ms | p99 ms | vs /predict | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for (name, concurrency), rounds in results.items():
        best = median_of(rounds)
        ratio = statistics.median(ratios[(name, concurrency)])
        lines.append(
            f"| {name} | {concurrency} | {best.rps:.0f} | {best.percentile(0.5) * 1000:.2f} | "
            f"{best.percentile(0.99) * 1000:.2f} | {ratio:.2f}x | "
            f"{sum(r.errors for r in rounds)} |"
        )
        if name.startswith("V2"):
            verdicts.append(ratio >= TARGET)
    lines += [
        "",
        f"V2 within 10% of /predict in every row: **{'yes' if all(verdicts) else 'no'}**. "
        f"One uvicorn worker, the same keep-alive client (bench/loadgen.py) and concurrency "
        f"for each case; {args.rounds} interleaved rounds of {args.seconds:.0f} s, median "
        f"round; ratio = median of per-round ratios. Python {platform.python_version()}, "
        f"{os.cpu_count()} cores.",
    ]
    table = "\n".join(lines)
    sys.stdout.write(table + "\n")
    for (name, concurrency), rounds in results.items():
        sys.stdout.write(f"{name:28s} c={concurrency:<3d}{summary(median_of(rounds))}\n")
    if not args.no_write:
        write_section("V2 inference", table)


if __name__ == "__main__":
    main()
