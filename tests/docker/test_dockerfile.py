"""The Dockerfile and .dockerignore, read as files: lint and what the image must be."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from .dockerfile import (
    DockerIgnore,
    Stage,
    container_argv,
    copy_args,
    exposed_ports,
    healthcheck,
    instructions,
    stage_env,
    stages,
    volumes,
)

BASE = "python:3.11-slim"


@pytest.fixture(scope="module")
def dockerfile(project_root: Path) -> str:
    return (project_root / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def runtime(dockerfile: str) -> Stage:
    return stages(dockerfile)[-1]


def test_hadolint_finds_nothing(hadolint: Path, project_root: Path, tmp_path: Path) -> None:
    # An explicit configuration, so that no .hadolint.yaml on the machine hides a rule;
    # the threshold "style" fails on every finding, down to the least severe.
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    done = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json", "--failure-threshold", "style",
         "--config", str(config), str(project_root / "Dockerfile")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    findings = json.loads(done.stdout or "[]")
    assert done.returncode == 0 and findings == [], json.dumps(findings, indent=1) + done.stderr


def test_hadolint_fails_on_a_bad_dockerfile(hadolint: Path, tmp_path: Path) -> None:
    """The lint step can fail: an unpinned apt-get install is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(f"FROM {BASE}\nRUN apt-get update && apt-get install -y curl\n")
    config = tmp_path / "hadolint.yaml"
    config.write_text("ignored: []\n")
    done = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json", "--failure-threshold", "style",
         "--config", str(config), str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "DL3008" in {finding["code"] for finding in json.loads(done.stdout)}


def test_every_ignored_rule_is_justified(dockerfile: str) -> None:
    lines = dockerfile.splitlines()
    for number, line in enumerate(lines):
        if re.search(r"hadolint\s+ignore", line):
            above = lines[number - 1].strip() if number else ""
            assert above.startswith("#") and "hadolint" not in above, (
                f"line {number + 1}: say why the rule is ignored in a comment above it"
            )


def test_two_stages_on_the_slim_image_by_tag(dockerfile: str) -> None:
    found = stages(dockerfile)
    assert len(found) >= 2, "a build stage and a runtime stage"
    assert all(stage.base == BASE for stage in found), [s.base for s in found]


def test_runtime_stage_takes_only_the_built_environment(dockerfile: str, runtime: Stage) -> None:
    """No sources, tests or .git: the runtime stage copies from the build stage only."""
    builders = {s.name for s in stages(dockerfile)[:-1]} | {
        str(s.index) for s in stages(dockerfile)[:-1]
    }
    copies = [copy_args(i) for i in runtime.all("COPY")]
    assert copies, "the runtime stage must copy the installed environment"
    assert all(c.from_stage in builders for c in copies), copies
    assert not runtime.all("ADD")
    assert not re.search(r"\b(gcc|g\+\+|build-essential|apt-get|git)\b", _runs(runtime))


def test_runtime_environment(runtime: Stage) -> None:
    env = stage_env(runtime)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["BACKPROP_HOST"] == "0.0.0.0"
    assert env["BACKPROP_MODEL_DIR"] == "/data"
    assert int(env["BACKPROP_WORKERS"]) >= 1
    assert exposed_ports(runtime) == {8000, 8001} and env["BACKPROP_PORT"] == "8000"
    assert env["BACKPROP_GRPC_PORT"] == "8001"


def test_store_is_a_volume_owned_by_a_non_root_user(runtime: Stage) -> None:
    assert volumes(runtime) == ["/data"]
    user = runtime.last("USER")
    assert user is not None, "the runtime stage must set USER"
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {user.args}: numeric and not root"
    assert gid == "" or (gid.isdigit() and int(gid) != 0)
    assert re.search(rf"\bchown\s+{re.escape(user.args)}\s+(\S+\s+)*/data\b", _runs(runtime)), (
        "the store must belong to USER before VOLUME freezes it"
    )
    volume = runtime.last("VOLUME")
    assert volume is not None
    last_run = max(i.last_line for i in runtime.all("RUN"))
    assert volume.first_line > last_run, "changes to /data after VOLUME are discarded"


def test_healthcheck_asks_ready_with_the_standard_library(runtime: Stage) -> None:
    check = healthcheck(runtime)
    assert check is not None and check.exec_form, "HEALTHCHECK CMD [...] in exec form"
    assert check.argv[:2] == ["python", "-c"], "slim images have no curl or wget"
    assert "urllib.request" in check.argv[2] and "/health/ready" in check.argv[2]
    assert "BACKPROP_PORT" in check.argv[2], "it must follow the configured port"
    assert check.timeout < check.interval and check.start_period >= 10


def test_entrypoint_is_the_server_in_exec_form(runtime: Stage) -> None:
    for keyword in ("ENTRYPOINT", "CMD"):
        for instruction in runtime.all(keyword):
            assert instruction.exec_form is not None, f"{keyword} in exec form receives SIGTERM"
    assert container_argv(runtime)[0] == "backprop-serve"


KEPT_OUT = [
    ".git/HEAD",
    ".venv/bin/python",
    "models/v1/weights.npz",
    "models/registry.sqlite3",
    ".env",
    "tests/service/test_app.py",
    "model/__pycache__/network.cpython-311.pyc",
    "service/routes/__pycache__/health.cpython-311.pyc",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/CACHEDIR.TAG",
    ".mypy_cache/3.11/x.json",
    ".hypothesis/examples/x",
    "backprop_serve.egg-info/PKG-INFO",
    "build/lib/model/network.py",
    "dist/backprop_serve-0.1.0-py3-none-any.whl",
    ".coverage",
]
LET_IN = [
    "pyproject.toml",
    "README.md",
    "model/network.py",
    "service/app.py",
    "service/routes/health.py",
    "service/static/index.html",
]


@pytest.mark.parametrize("path", KEPT_OUT)
def test_dockerignore_keeps_out(project_root: Path, path: str) -> None:
    assert DockerIgnore.of(project_root).excludes(path)


@pytest.mark.parametrize("path", LET_IN)
def test_dockerignore_lets_in(project_root: Path, path: str) -> None:
    assert not DockerIgnore.of(project_root).excludes(path)


def test_dockerignore_rules_as_docker_applies_them() -> None:
    """The matcher the replay relies on: last match wins, directories cover contents."""
    ignore = DockerIgnore("*\n!keep/\nkeep/**/*.log\n!keep/important.log\n/secret?.txt\n")
    assert ignore.excludes("other/file.py")
    assert not ignore.excludes("keep/a/b.py")
    assert ignore.excludes("keep/a/b.log")
    assert not ignore.excludes("keep/important.log")
    assert DockerIgnore("/secret?.txt").excludes("secret1.txt")
    assert not DockerIgnore("/secret?.txt").excludes("secret12.txt")
    assert DockerIgnore("**/*.pyc").excludes("a/b/c.pyc")


def test_instructions_join_continuations_and_drop_comments() -> None:
    text = "FROM x AS b\n# note\nRUN a \\\n  # inside\n  && b\nENV A=1 \\\n    C=$A\nENV A=2 B=$A\n"
    found = instructions(text)
    assert [(i.keyword, i.first_line, i.last_line) for i in found] == [
        ("FROM", 1, 1),
        ("RUN", 3, 5),
        ("ENV", 6, 7),
        ("ENV", 8, 8),
    ]
    assert found[1].args == "a   && b"
    # As in Docker, one ENV sees the values from before it, not its own.
    env = stage_env(stages(text)[0], {})
    assert (env["A"], env["B"], env["C"]) == ("2", "1", "")


def _runs(stage: Stage) -> str:
    return "\n".join(i.args for i in stage.all("RUN"))
