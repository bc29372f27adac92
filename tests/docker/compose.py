"""Run `docker-compose config` (1.29) or `docker compose config` (v2) and read the result.

Neither needs a Docker engine for `config`: it reads the file, interpolates `.env`,
validates against its schema and prints the resolved project.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Variables of the caller's shell would change what compose resolves.
_INFLUENCES = re.compile(r"^(BACKPROP_.*|COMPOSE_.*|DOCKER_.*)$")


@dataclass(frozen=True)
class Compose:
    """One Compose implementation: its command and how to get JSON out of it."""

    label: str
    command: list[str]
    major: int

    def config(self, project: Path, extra_env: dict[str, str] | None = None) -> Any:
        """The resolved configuration of `project`'s docker-compose.yml, as data."""
        done = self.run(
            project, ["config"] + (["--format", "json"] if self.major >= 2 else []), extra_env
        )
        if done.returncode != 0:
            raise ComposeRejected(done.stderr + done.stdout)
        if self.major >= 2:
            return json.loads(done.stdout)
        return yaml_to_data(done.stdout, self.command[0])

    def run(
        self, project: Path, args: list[str], extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not _INFLUENCES.match(k)}
        env |= extra_env or {}
        return subprocess.run(
            [*self.command, *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )


class ComposeRejected(Exception):
    """Compose refused the file; the message is what it said."""


def yaml_to_data(text: str, compose_script: str) -> Any:
    """Parse YAML with the interpreter docker-compose 1.29 itself runs on.

    That Python has PyYAML (docker-compose depends on it); the project's test
    environment does not need to.
    """
    first = Path(compose_script).read_text(errors="replace").splitlines()[0]
    interpreter = first[2:].strip().split() if first.startswith("#!") else ["python3"]
    code = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
    done = subprocess.run(
        [*interpreter, "-c", code], input=text, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def version_of(command: list[str]) -> str | None:
    try:
        done = subprocess.run(
            [*command, "version", "--short"], capture_output=True, text=True, timeout=60
        )
    except OSError:
        return None
    return done.stdout.strip().lstrip("v") if done.returncode == 0 else None


def find_v2() -> Compose | None:
    """Compose v2 as a docker CLI plugin or as a standalone docker-compose, if any."""
    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    folders = [os.path.dirname(sys.executable), *os.environ.get("PATH", "").split(os.pathsep)]
    for folder in folders:
        binary = Path(folder) / "docker-compose"
        if binary.is_file():
            candidates.append([str(binary)])
    for command in candidates:
        version = version_of(command)
        if version and version.split(".")[0] == "2":
            return Compose(f"docker compose {version}", command, 2)
    return None


def ports(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, published, target) for each port, from either output style."""
    found: list[tuple[str, int, int]] = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            *host, published, target = str(port).split("/")[0].split(":")
            found.append((host[0] if host else "", int(published), int(target)))
    return found


def mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, source, target) for each volume, from either output style."""
    found: list[tuple[str, str, str]] = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append((volume.get("type", "volume"), volume["source"], volume["target"]))
        else:
            source, target = str(volume).split(":")[:2]
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            found.append((kind, source, target))
    return found
