"""The single-host registry on stdlib sqlite3: no SQLAlchemy at start, the files the
SQLAlchemy path wrote, and writers that contend for one file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command

from service.registry import (
    SQLiteRegistry,
    default_url,
    engine_for,
    migrate,
    open_registry,
    sqlite_file,
)
from service.registry.schema import HEAD_REVISION
from service.registry.sql import SQLRegistry, open_sql_registry

from .server import ROOT

# Run in a fresh interpreter: other tests import SQLAlchemy into this one.
AT_START = """
import json, sys
folder = sys.argv[1]
import service.app, service.cli
from service.registry import SQLiteRegistry, default_url, open_registry
from service.settings import Settings
from service.store import ModelStore

service.app.create_app(Settings(model_dir=folder))
registry = open_registry(default_url(folder))
assert isinstance(registry, SQLiteRegistry), registry
registry.add_version("v1", "2026-01-01T00:00:00Z", {})
registry.set_active("v1")
registry.create_job("j", {}, None, "t", max_queued=5)
assert registry.claim_job("h:1:0", "t", lease_seconds=30) is not None
registry.close()
store = ModelStore(folder)
store.sync()
store.close()
at_head = {name: name in sys.modules for name in ("sqlalchemy", "alembic")}
open_registry(default_url(folder + "/new")).close()  # a new file: migrated by Alembic
print(json.dumps({"at_head": at_head, "migrating": "alembic" in sys.modules}))
"""


def test_a_registry_at_head_is_opened_without_sqlalchemy(tmp_path: Path) -> None:
    open_registry(default_url(tmp_path)).close()  # created at head
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    run = subprocess.run(
        [sys.executable, "-c", AT_START, str(tmp_path)],
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    said = json.loads(run.stdout.splitlines()[-1])
    assert said == {"at_head": {"sqlalchemy": False, "alembic": False}, "migrating": True}


def test_plain_sqlite_urls_and_their_rendering_match_sqlalchemy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url in (
        "sqlite:///relative/registry.sqlite3",
        f"sqlite:///{tmp_path}/a b+c%25d/registry.sqlite3",
        f"sqlite+pysqlite:///{tmp_path}/driver.sqlite3",
    ):
        path = sqlite_file(url)
        assert path is not None
        lite, old = SQLiteRegistry(path), open_sql_registry(url)
        try:
            assert lite.url == old.url
            lite.add_version("v1", "t", {})
            assert [r.version for r in old.versions()] == ["v1"]  # one file, both ways
        finally:
            lite.close()
            old.close()
    assert (tmp_path / "relative" / "registry.sqlite3").is_file()
    assert (tmp_path / "a b+c%d" / "registry.sqlite3").is_file()
    for url in ("sqlite:///:memory:", "sqlite://", "sqlite:///x.db?mode=ro", "postgresql://h/db"):
        assert sqlite_file(url) is None, url  # these stay with SQLAlchemy's registry
    assert isinstance(open_registry("sqlite:///:memory:"), SQLRegistry)


def _same_view(a: SQLiteRegistry | SQLRegistry, b: SQLiteRegistry | SQLRegistry) -> None:
    assert a.versions() == b.versions()
    assert a.active_pointer() == b.active_pointer()
    assert a.jobs(100) == b.jobs(100)
    assert a.job_counts() == b.job_counts()
    for job in a.jobs(100):
        assert a.job_data(job.job_id) == b.job_data(job.job_id)


def test_a_file_written_through_sqlalchemy_reads_and_writes_the_same(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    engine = engine_for(url)  # the old path: Alembic from nothing
    assert migrate.upgrade(engine) == (None, HEAD_REVISION)
    engine.dispose()
    old = open_sql_registry(url)
    old.add_version("v1", "2026-01-01T00:00:00Z", {"sha256": "a"})
    old.set_active("v1", "t")
    old.create_job("a", {"k": 1}, b"\x00data", "t0", max_queued=5)
    old.create_job("b", {"k": 2}, None, "t1", max_queued=5)
    claimed = old.claim_job("h:7:0", "t2", lease_seconds=30)
    assert claimed is not None
    old.update_progress("a", 1, {"epoch": 1}, [{"epoch": 1, "loss": 0.5}])
    lite = SQLiteRegistry(tmp_path / "registry.sqlite3")
    try:
        progressed = replace(claimed, progress={"epoch": 1}, history=[{"epoch": 1, "loss": 0.5}])
        assert lite.job("a") == old.job("a") == progressed
        _same_view(lite, old)
        lite.complete_job(
            "a", 1, "v2", "2026-01-02T00:00:00Z", {}, {"ok": True}, {}, [], activate=True, now="t3"
        )
        assert lite.request_cancel("b", "t4").status == "cancelled"
        _same_view(lite, old)
        assert old.active_pointer().version == "v2" and old.version("v2").job_id == "a"  # type: ignore[union-attr]
    finally:
        lite.close()
        old.close()


def _single_host_file(path: Path) -> None:
    """A registry file as the single-host service wrote it before migrations existed."""
    engine = engine_for(f"sqlite:///{path}")
    with engine.connect() as connection:
        command.upgrade(migrate._config(connection), "0001")  # that schema, then no stamp
        connection.commit()
    engine.dispose()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE alembic_version")
        db.execute("INSERT INTO versions VALUES ('v1', '2026-01-01T00:00:00Z', '{}', 'ok', NULL)")
        db.execute("INSERT INTO state VALUES ('active_version', 'v1')")
        db.execute(
            "INSERT INTO jobs (job_id, status, config, created_at, owner_pid)"
            " VALUES ('died', 'running', '{}', 't0', 4242), ('next', 'queued', '{}', 't1', NULL)"
        )
    db.close()


def test_a_single_host_file_from_before_migrations_is_migrated_and_served(
    tmp_path: Path,
) -> None:
    path = tmp_path / "registry.sqlite3"
    _single_host_file(path)
    registry = open_registry(f"sqlite:///{path}")
    try:
        assert isinstance(registry, SQLiteRegistry)
        assert registry._stored_revision() == HEAD_REVISION
        pointer = registry.active_pointer()
        assert (pointer.version, pointer.generation) == ("v1", 1)
        assert [r.version for r in registry.versions()] == ["v1"]
        assert registry.fail_unleased_jobs("t2") == ["died"]
        job = registry.claim_job("h:1:0", "t3", lease_seconds=30)
        assert job is not None and job.job_id == "next" and job.attempt == 1
        assert registry.set_active("v1") == 2
    finally:
        registry.close()


def test_two_registries_on_one_file_lose_no_write_and_never_share_a_claim(
    tmp_path: Path,
) -> None:
    path = tmp_path / "registry.sqlite3"
    registries = [SQLiteRegistry(path), SQLiteRegistry(path)]
    creators, per_creator = 4, 25
    claimed: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def create(n: int) -> None:
        for i in range(per_creator):
            registries[n % 2].create_job(f"j{n}-{i}", {"n": n}, b"x", "t", max_queued=1000)

    def claim(n: int) -> None:
        registry = registries[n % 2]
        while True:
            finished = done.is_set()  # read before claiming: a last sweep once all exist
            job = registry.claim_job(f"h:{n}:0", "t", lease_seconds=30, max_running=1000)
            if job is not None:
                with lock:
                    claimed.append(job.job_id)
            elif finished:
                return

    makers = [threading.Thread(target=create, args=(n,)) for n in range(creators)]
    takers = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    try:
        for thread in makers + takers:
            thread.start()
        for thread in makers:
            thread.join()
        done.set()
        for thread in takers:
            thread.join()
        total = creators * per_creator
        assert len(claimed) == total and len(set(claimed)) == total
        assert registries[0].job_counts() == {"running": total}
        assert {j.attempt for j in registries[1].jobs(total)} == {1}
    finally:
        for registry in registries:
            registry.close()


CONTENDER = """
import sys
from service.registry import SQLiteRegistry
registry = SQLiteRegistry(sys.argv[1])
name = sys.argv[2]
for i in range(40):
    registry.create_job(f"{name}-{i}", {}, None, "t", max_queued=1000)
    job = registry.claim_job(f"h:{name}:0", "t", lease_seconds=30, max_running=1000)
    if job is not None:
        print(job.job_id)
registry.add_version(name, "t", {})
registry.set_active(name)
registry.close()
"""


def run_at_once(script: str, argument_lists: list[list[str]]) -> list[tuple[str, str]]:
    """Run ``script`` in one fresh interpreter per argument list, all at once; each must
    exit 0. Returns their (stdout, stderr)."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *arguments],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for arguments in argument_lists
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * len(runs), outputs
    return outputs


def test_processes_writing_one_file_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    SQLiteRegistry(path).close()  # at head before the processes start
    outputs = run_at_once(CONTENDER, [[str(path), f"p{n}"] for n in range(3)])
    claimed = [line for out, _ in outputs for line in out.split()]
    assert len(claimed) == 120 and len(set(claimed)) == 120
    registry = SQLiteRegistry(path)
    try:
        assert registry.job_counts() == {"running": 120}
        assert sorted(r.version for r in registry.versions()) == ["p0", "p1", "p2"]
        assert registry.active_pointer().generation == 3
    finally:
        registry.close()


# Opens (so creates and migrates) the file at argv[1] once the clock passes argv[2],
# with the stdlib registry, the SQLAlchemy one, or `backprop-serve db upgrade`'s code.
OPENERS = {
    "sqlite3": "SQLiteRegistry(path).close()",
    "sqlalchemy": "open_sql_registry('sqlite:///' + path).close()",
    "db upgrade": "migrate.upgrade(engine_for('sqlite:///' + path))",
}
OPENER = """
import sys, time
path, start = sys.argv[1], float(sys.argv[2])
from service.registry import SQLiteRegistry, engine_for, migrate
from service.registry.sql import open_sql_registry
while time.time() < start:
    pass
{open_it}
"""


@pytest.mark.parametrize("kind", OPENERS)
def test_processes_opening_one_new_file_at_once_all_start(tmp_path: Path, kind: str) -> None:
    """Several servers started together on an empty store: one migrates, the others wait
    for it and open the file at head (before, about one in four failed: "database is
    locked" while another process switched the new file to WAL or migrated it)."""
    opener = OPENER.format(open_it=OPENERS[kind])
    for trial in range(3):
        path = tmp_path / f"trial-{trial}" / "registry.sqlite3"
        start = time.time() + 3.0  # past every interpreter's start and imports
        run_at_once(opener, [[str(path), str(start)]] * 4)
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
                (HEAD_REVISION,)
            ]


def _open_files(path: Path) -> int:
    """How many of this process's descriptors are on the file (or its -wal/-shm)."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd).startswith(str(path.resolve())))


def test_close_closes_every_connection_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    registry = SQLiteRegistry(path)
    barrier = threading.Barrier(8)

    def use(n: int) -> None:
        barrier.wait()  # all at once: the pool opens more connections than it keeps
        registry.add_version(f"v{n}", "t", {})
        registry.versions()

    threads = [threading.Thread(target=use, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(registry._idle) <= 5 and _open_files(path) > 0
    registry.close()
    assert _open_files(path) == 0
    assert len(registry.versions()) == 8  # used again after close: it reconnects
    registry.close()
    assert _open_files(path) == 0
