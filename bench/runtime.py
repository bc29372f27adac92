"""Runtime size benchmark: what the Dockerfile's /opt/venv holds (run by `make bench`).

The full run replays the Dockerfile's build stage with tests/docker/replay.py (the
same replay the tests/docker rehearsal uses: pip builds the wheel and installs it
with its runtime dependencies into /opt/venv) and measures that folder: bytes of its
files, and the largest distributions in it. Target: <= 200 MB (10^6 bytes).

`--smoke` replays nothing: it adds up, from this environment's installed metadata,
the files of the distributions the project's runtime dependencies pull in (their
closure, extras and markers evaluated), plus the project's own package files. The
section says which of the two it holds.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import tomllib
from collections import defaultdict
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import write_out  # noqa: E402

TARGET_MB = 200.0
TOP = 8
MB = 1e6


def tree_bytes(folder: Path) -> int:
    """Bytes of the regular files under `folder` (symlinks not followed, as a layer holds)."""
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _top_level(site: Path) -> dict[str, int]:
    """Bytes per distribution in a site-packages folder, from each dist-info's RECORD."""
    sizes: dict[str, int] = {}
    for info in site.glob("*.dist-info"):
        record = info / "RECORD"
        name = info.name.split("-")[0]
        total = 0
        if record.exists():
            for line in record.read_text().splitlines():
                path = site / line.split(",")[0]
                if path.is_file() and not path.is_symlink():
                    total += path.lstat().st_size
        sizes[str(canonicalize_name(name))] = total
    return sizes


def replayed_venv() -> tuple[int, int, dict[str, int], float]:
    """Replay the Dockerfile's build stage; answer bytes, files, per-package bytes, seconds."""
    from tests.docker.replay import replay_build

    workdir = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    workdir.chmod(0o755)
    try:
        started = time.perf_counter()
        build = replay_build(ROOT / "Dockerfile", ROOT, workdir)
        took = time.perf_counter() - started
        venv = build.stage_roots["build"] / "opt" / "venv"
        files = sum(1 for p in venv.rglob("*") if p.is_file())
        site = next(venv.glob("lib/python*/site-packages"))
        return tree_bytes(venv), files, _top_level(site), took
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def installed_closure() -> tuple[int, int, dict[str, int]]:
    """Bytes the runtime's distributions take in this environment (the smoke estimate)."""
    sizes: dict[str, int] = defaultdict(int)
    files = 0
    todo = [(req, frozenset(req.extras)) for req in _runtime_requirements()]
    seen: set[tuple[str, frozenset[str]]] = set()
    counted: set[str] = set()
    while todo:
        req, extras = todo.pop()
        key = (str(canonicalize_name(req.name)), extras)
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(req.name)
        if key[0] not in counted:
            counted.add(key[0])
            for f in dist.files or []:
                path = Path(str(dist.locate_file(f)))
                if path.is_file() and not path.is_symlink():
                    sizes[key[0]] += path.lstat().st_size
                    files += 1
        for line in dist.requires or []:
            child = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in envs):
                todo.append((child, frozenset(child.extras)))
    for package in ("model", "service"):
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                sizes["backprop-serve"] += path.stat().st_size
                files += 1
    return sum(sizes.values()), files, dict(sizes)


def left_out() -> str:
    """What the test-only reference packages take where they are installed (this .venv)."""
    found = []
    for name in ("scikit-learn", "scipy", "joblib", "threadpoolctl"):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        paths = [Path(str(dist.locate_file(f))) for f in dist.files or []]
        size = sum(p.lstat().st_size for p in paths if p.is_file() and not p.is_symlink())
        found.append(f"{name} {size / MB:.1f} MB")
    return ", ".join(found) if found else "none installed here"


def section(smoke: bool) -> str:
    if smoke:
        total, files, sizes = installed_closure()
        how = (
            "**smoke run**: no replay; the runtime dependencies' files as installed in this "
            "environment (an estimate, not the image's figure)"
        )
    else:
        total, files, sizes, took = replayed_venv()
        how = (
            "the Dockerfile's build stage replayed by tests/docker/replay.py "
            f"({took:.0f} s), /opt/venv measured: bytes of its regular files"
        )
    label = "runtime dependencies here (smoke estimate)" if smoke else "Dockerfile /opt/venv"
    verdict = "**met**" if total / MB <= TARGET_MB else "**not met**"
    largest = sorted(sizes.items(), key=lambda kv: kv[1], reverse=True)[:TOP]
    lines = [
        "## Runtime size",
        "",
        "| runtime environment | size | files | target | |",
        "|---|---:|---:|---:|---|",
        f"| {label} | {total / MB:.1f} MB ({total / 2**20:.1f} MiB) | {files} "
        f"| <= {TARGET_MB:.0f} MB | {verdict} |",
        "",
        f"| largest distributions in it (of {len(sizes)}) | size |",
        "|---|---:|",
        *(f"| {name} | {size / MB:.1f} MB |" for name, size in largest),
        "",
        f"How: {how}. MB = 10^6 bytes. The runtime reads Iris from the package's own "
        "`model/iris.csv` with NumPy, so neither scikit-learn nor SciPy is installed in it "
        "(scikit-learn stays in the `test` extra, the reference the tests compare against). "
        f"Left out of the runtime, as installed in the test environment: {left_out()}.",
        "",
        "Command: `.venv/bin/python bench/runtime.py --out bench/out/runtime.md`.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="estimate from installed metadata")
    parser.add_argument("--out", type=Path, help="write the Markdown section here")
    args = parser.parse_args()
    write_out(args.out, section(args.smoke))


if __name__ == "__main__":
    main()
