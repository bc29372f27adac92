"""docker-compose.yml and .env.example, checked by Compose itself (no engine needed).

Each check runs in a temporary copy of the project's compose files, so that a
developer's own .env cannot change the outcome.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .compose import Compose, ComposeRejected, mounts, ports
from .dockerfile import healthcheck, stages

TOKEN = "test-token-not-a-secret"


def copy_project(project_root: Path, into: Path, env_file: str | None) -> Path:
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore"):
        shutil.copy(project_root / name, into / name)
    if env_file is not None:
        (into / ".env").write_text(env_file)
    return into


def example_env(project_root: Path, token: str = TOKEN) -> str:
    """.env.example with the token filled in, as the README tells users to do."""
    text = (project_root / ".env.example").read_text()
    return text.replace("BACKPROP_API_TOKEN=\n", f"BACKPROP_API_TOKEN={token}\n")


@pytest.fixture
def resolved(compose: Compose, project_root: Path, tmp_path: Path) -> dict[str, Any]:
    project = copy_project(project_root, tmp_path, example_env(project_root))
    config = compose.config(project)
    config["_project"] = str(project)
    return config


def api(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]["api"]


def test_api_is_built_from_the_project(resolved: dict[str, Any]) -> None:
    build = api(resolved)["build"]
    assert Path(build["context"]) == Path(resolved["_project"])
    assert build.get("dockerfile", "Dockerfile") == "Dockerfile"


def test_ports_8000_and_8001_are_published(resolved: dict[str, Any]) -> None:
    assert ports(api(resolved)) == [("", 8000, 8000), ("", 8001, 8001)]


def test_store_is_a_named_volume_on_data(resolved: dict[str, Any]) -> None:
    found = mounts(api(resolved))
    assert [(kind, target) for kind, _, target in found] == [("volume", "/data")]
    assert found[0][1] in resolved["volumes"], "the volume must be declared at the top level"


def test_healthcheck_is_the_images(resolved: dict[str, Any], project_root: Path) -> None:
    image_check = healthcheck(stages((project_root / "Dockerfile").read_text())[-1])
    assert image_check is not None
    check = api(resolved)["healthcheck"]
    assert check["test"] == ["CMD", *image_check.argv], "keep compose and Dockerfile in step"
    assert (check["interval"], check["timeout"], check["start_period"]) == ("30s", "5s", "30s")
    assert int(check["retries"]) == 3


def test_environment_carries_token_and_workers(resolved: dict[str, Any]) -> None:
    env = api(resolved)["environment"]
    assert env["BACKPROP_API_TOKEN"] == TOKEN
    assert env["BACKPROP_WORKERS"] == "2"
    assert env["BACKPROP_LOG_LEVEL"] == "info" and env["BACKPROP_LOG_FORMAT"] == "text"


def test_restart_limits_and_init(resolved: dict[str, Any]) -> None:
    service = api(resolved)
    assert service["restart"] == "unless-stopped"
    assert str(service["mem_limit"]) in {"1g", str(1024**3)}
    assert float(service["cpus"]) == 2.0
    assert service["init"] is True
    assert float(service["cpus"]) >= int(service["environment"]["BACKPROP_WORKERS"])


def test_publish_address_comes_from_env(
    compose: Compose, project_root: Path, tmp_path: Path
) -> None:
    env_file = example_env(project_root).replace(
        "BACKPROP_PUBLISH=8000", "BACKPROP_PUBLISH=127.0.0.1:9000"
    )
    config = compose.config(copy_project(project_root, tmp_path, env_file))
    assert ports(api(config)) == [("127.0.0.1", 9000, 8000), ("", 8001, 8001)]


@pytest.mark.parametrize("env_file", [None, "", "from-example"], ids=["no-env", "empty", "copy"])
def test_refuses_to_start_without_a_token(
    compose: Compose, project_root: Path, tmp_path: Path, env_file: str | None
) -> None:
    """No .env, or .env.example copied unchanged: compose says what to set."""
    text = (project_root / ".env.example").read_text() if env_file == "from-example" else env_file
    with pytest.raises(ComposeRejected, match="BACKPROP_API_TOKEN"):
        compose.config(copy_project(project_root, tmp_path, text))


def test_example_env_holds_no_secret(project_root: Path) -> None:
    lines = (project_root / ".env.example").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert settings["BACKPROP_API_TOKEN"] == ""
    compose_file = (project_root / "docker-compose.yml").read_text()
    unused = [name for name in settings if "${" + name not in compose_file]
    assert not unused, f".env.example names variables docker-compose.yml does not use: {unused}"


def test_env_file_is_git_ignored(project_root: Path) -> None:
    if not (project_root / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "--quiet", ".env"], cwd=project_root, timeout=30)
    assert done.returncode == 0, ".env holds the real token: it must stay out of git"
