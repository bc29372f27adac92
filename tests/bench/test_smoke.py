"""`make bench-smoke`: every bench script runs for a few seconds and writes its table.

Nothing here is timed: performance lives in bench/RESULTS.md (`make bench`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.system import apt_install

ROOT = Path(__file__).resolve().parents[2]


def bench_scripts() -> list[str]:
    match = re.search(r"^BENCH_SCRIPTS := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "the Makefile lists its bench scripts in BENCH_SCRIPTS"
    return match.group(1).split()


def test_bench_smoke_writes_every_section_with_its_table(tmp_path: Path) -> None:
    apt_install("wrk", "wrk")
    done = subprocess.run(
        ["make", "--no-print-directory", "bench-smoke", f"BENCH_SMOKE_OUT={tmp_path}"]
        + [f"PY={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = bench_scripts()
    assert {"serve", "accesslog"} <= set(names)
    for name in names:
        text = (tmp_path / f"{name}.md").read_text()
        assert text.startswith("## "), name
        assert re.search(r"^\|.*\|\n\|[-:| ]+\|\n\|", text, re.M), f"{name}: no table"
    serving = (tmp_path / "serve.md").read_text()
    needles = ("SMOKE RUN", "raw ASGI", "scikit-learn", "V2 infer, binary tensors", "met")
    for needle in (*needles, "also serves gRPC in its process", "A/A control"):
        assert needle in serving
