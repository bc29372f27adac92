"""Registry migrations: concurrent ``db upgrade``, the committed schema, refusing an old schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from service.registry import engine_for, migrate
from service.registry.schema import HEAD_REVISION, metadata

from ..service.server import ROOT, free_port
from .postgres import Postgres

SNAPSHOT = Path(__file__).with_name("schema.postgresql.txt")
SCHEMA_QUERY = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
       || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END
       || COALESCE(' default ' || column_default, '')
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint ' || conname || ': ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
ORDER BY 1
"""


def _env(url: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_")}
    return environ | {"BACKPROP_REGISTRY_URL": url, "PYTHONPATH": str(ROOT)}


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_upgrades_one_migrates_the_others_wait_and_succeed(
    postgres_url: str,
) -> None:
    runs = [_cli("db", "upgrade", env=_env(postgres_url)) for _ in range(4)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, outputs
    said = [out for out, _ in outputs]
    assert sum("migrated from empty to revision" in out for out in said) == 1, said
    assert sum("already at revision" in out for out in said) == 3, said
    assert "postgres@127.0.0.1" in said[0] and ":***@" not in said[0]  # no password to hide


def test_the_migrated_schema_is_the_committed_snapshot(
    postgres_server: Postgres, postgres_url: str
) -> None:
    migrate.upgrade(engine_for(postgres_url))
    rows = postgres_server.execute(SCHEMA_QUERY, database=postgres_url.rsplit("/", 1)[1])
    rendered = "\n".join(row[0] for row in rows) + "\n"
    if os.environ.get("UPDATE_SCHEMA_SNAPSHOT"):
        SNAPSHOT.write_text(rendered)
    assert rendered == SNAPSHOT.read_text(), (
        "the migrations changed the schema: review the difference, then rerun with "
        "UPDATE_SCHEMA_SNAPSHOT=1 to commit the new snapshot"
    )


def test_the_migrations_build_exactly_the_code_schema(postgres_url: str, tmp_path: Path) -> None:
    for url in (postgres_url, f"sqlite:///{tmp_path / 'registry.sqlite3'}"):
        engine = engine_for(url)
        migrate.upgrade(engine)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
        engine.dispose()
        assert differences == [], (url, differences)


def test_a_replica_on_an_older_schema_refuses_to_start_naming_the_command(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as connection:
        command.upgrade(migrate._config(connection), "0001")
        connection.commit()
    engine.dispose()
    env = _env(postgres_url) | {"BACKPROP_MODEL_DIR": str(tmp_path / "cache")}
    for args in (["--port", str(free_port())], ["--port", str(free_port()), "worker"]):
        run = _cli(*args, env=env)
        _, err = run.communicate(timeout=60)
        assert run.returncode != 0
        assert "older than this code" in err and "backprop-serve db upgrade" in err, err


def test_a_replica_on_an_empty_database_refuses_naming_the_command(
    postgres_url: str, tmp_path: Path
) -> None:
    env = _env(postgres_url) | {"BACKPROP_MODEL_DIR": str(tmp_path / "cache")}
    run = _cli("--port", str(free_port()), "--role", "serve", env=env)
    _, err = run.communicate(timeout=60)
    assert run.returncode != 0 and "backprop-serve db upgrade" in err, err


def test_help_lists_the_cluster_settings_and_commands() -> None:
    run = _cli("--help", env=_env("sqlite:///unused"))
    out, _ = run.communicate(timeout=30)
    for needle in (
        "BACKPROP_REGISTRY_URL",
        "BACKPROP_ARTIFACTS_URL",
        "BACKPROP_ROLE",
        "BACKPROP_JOB_TIMEOUT_SECONDS",
        "worker",
        "db",
        "--role",
    ):
        assert needle in out, needle


def test_the_quick_path_knows_the_newest_migration() -> None:
    assert HEAD_REVISION == migrate.head_revision()
