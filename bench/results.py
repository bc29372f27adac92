"""Assemble bench/RESULTS.md from the sections the bench scripts wrote, or check them.

Every bench script takes ``--out PATH`` and writes there one Markdown section that
starts with ``## <title>`` and holds at least one table; ``--smoke`` makes it run for
a few seconds only (same table shape, figures meaningless). ``make bench`` runs the
scripts in the Makefile's ``BENCH_SCRIPTS`` order into ``bench/out/<script>.md`` and
then:

    python bench/results.py assemble bench/out train serve ...   # writes bench/RESULTS.md
    python bench/results.py check DIR train serve ...            # bench-smoke: tables exist
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
_TABLE = re.compile(r"^\|.*\|\n\|[-:| ]+\|\n\|", re.M)
_PACKAGES = (
    "numpy",
    "orjson",
    "pysimdjson",
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "httptools",
    "uvloop",
    "prometheus-client",
    "scikit-learn",
)


def write_out(path: str | Path | None, section: str) -> None:
    """Write one script's section (``## title`` + body) to ``--out``, and echo it."""
    text = section.strip() + "\n"
    sys.stdout.write(text)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)


def write_section(heading: str, body: str) -> None:
    """Replace (or append) the section ``## {heading}`` of RESULTS.md in place (for a
    script run on its own, before ``--out``; ``make bench`` assembles the whole file)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text.rstrip() + "\n")


def check(directory: Path, names: list[str]) -> list[str]:
    """The problems with the sections in ``directory``: missing, untitled or tableless."""
    problems = []
    for name in names:
        path = directory / f"{name}.md"
        if not path.exists():
            problems.append(f"{path}: not written")
            continue
        text = path.read_text()
        if not text.startswith("## "):
            problems.append(f"{path}: does not start with a '## ' title")
        if not _TABLE.search(text):
            problems.append(f"{path}: holds no Markdown table")
    return problems


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _versions() -> str:
    found = []
    for name in _PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        found.append((wrk.stdout or wrk.stderr).split("[", 1)[0].strip())
    except OSError:
        pass
    return ", ".join([f"Python {platform.python_version()}", *found])


def header(names: list[str]) -> str:
    """Where and how the figures were measured."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    load = os.getloadavg()
    return "\n".join(
        [
            "# Benchmark results",
            "",
            "Written by `make bench` (every script with `--out bench/out/<script>.md`, then "
            "`python bench/results.py assemble bench/out " + " ".join(names) + "`); rerun it to "
            "refresh every figure. `make bench-smoke` runs the same scripts for a few seconds.",
            "",
            f"- measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on commit {commit or 'unknown'}",
            f"- hardware: {os.cpu_count()} cores, {_cpu()}; {platform.system()} "
            f"{platform.release()}; load average at the end {load[0]:.2f} / {load[1]:.2f} / "
            f"{load[2]:.2f} (the machine is shared with other work: see each section's "
            "conditions)",
            f"- versions: {_versions()}",
            "",
        ]
    )


def assemble(directory: Path, names: list[str]) -> None:
    sections = [(directory / f"{name}.md").read_text().strip() for name in names]
    RESULTS.write_text(header(names) + "\n" + "\n\n".join(sections) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("assemble", "check"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("names", nargs="+", help="the scripts, in order (bench/<name>.py)")
    args = parser.parse_args()
    problems = check(args.directory, args.names)
    if problems:
        sys.exit("bench: " + "; ".join(problems))
    if args.action == "assemble":
        assemble(args.directory, args.names)
        sys.stdout.write(f"wrote {RESULTS}\n")
    else:
        sys.stdout.write(f"bench-smoke: {len(args.names)} sections, each with its table\n")


if __name__ == "__main__":
    main()
