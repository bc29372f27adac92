"""A real PostgreSQL for the tests: Debian's server on a temporary data folder and a free port.

``initdb`` and ``pg_ctl`` refuse to run as root, so as root (CI) they run as the
``postgres`` user on a folder handed to it; otherwise as the current user. The
server listens on 127.0.0.1 only, trusts local connections (a throwaway test
cluster), and trades durability for speed (fsync off). It can be stopped and
started again on the same folder and port, to test an outage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ..service.server import free_port
from ..system import apt_install

USER = "postgres"


def pg_bin() -> Path:
    """The folder of Debian's PostgreSQL programs (installed when missing)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        apt_install("postgresql")
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        pytest.fail("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/pg_ctl exists")
    return found[-1].parent


@dataclass
class Postgres:
    """One PostgreSQL server on loopback; ``url(db)`` names a database on it."""

    folder: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {"user": USER, "group": USER} if os.geteuid() == 0 else {}
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
            cwd=self.folder,
            **kwargs,
        )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        done = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"),
            "-o", options, "-w", "-t", "60", "start", check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"pg_ctl start failed: {done.stdout}{done.stderr}\n{self.log()}")
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def create_database(self, name: str) -> str:
        """A new empty database; answer its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(database), autocommit=True) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description else []


def start_postgres() -> Postgres:
    """Initialise and start a fresh server (the caller stops it and removes ``folder``)."""
    binaries = pg_bin()
    # not under pytest's tmp folders: those are private to root, and the server runs as postgres
    folder = Path(tempfile.mkdtemp(prefix="backprop-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, USER, USER)
    server = Postgres(folder, free_port(), binaries)
    try:
        server.init()
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One PostgreSQL server for the session's tests (each takes a database of its own)."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


_count = 0


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> str:
    """The URL of a new, empty database on the session's server."""
    global _count
    _count += 1
    return postgres_server.create_database(f"t{os.getpid()}_{_count}")
