"""Schema migrations: ``backprop-serve db upgrade`` and the check every process makes at start.

Alembic applies the revisions in ``migrations/versions``. On PostgreSQL the
upgrade runs under a session advisory lock, on a SQLite file under an exclusive
lock of ``<file>.lock`` beside it (``filelock``), so several processes may run it
at once: one migrates, the others wait for the lock, find the schema current and
succeed. A registry file written by the single-host service before migrations
existed is recognised and stamped as revision 0001 before upgrading.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from .filelock import engine_file_lock
from .records import SchemaOutdatedError

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_lock's key: any constant the project owns ("backprop" in ASCII)
LOCK_KEY = 0x6261636B70726F70
UPGRADE_COMMAND = "backprop-serve db upgrade"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def _is_single_host_file(connection: Connection) -> bool:
    tables = set(inspect(connection).get_table_names())
    return "versions" in tables and "alembic_version" not in tables


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to the head revision; answer (revision before, revision after).

    Before equal to after means there was nothing to do (e.g. another process
    migrated while this one waited for the lock).
    """
    postgres = engine.dialect.name == "postgresql"
    with engine_file_lock(engine), engine.connect() as connection:
        if postgres:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            connection.commit()
        try:
            if _is_single_host_file(connection):
                command.stamp(_config(connection), "0001")
                connection.commit()
            before = current_revision(connection)
            command.upgrade(_config(connection), "head")
            connection.commit()
            after = current_revision(connection)
        finally:
            if postgres:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                connection.commit()
    assert after is not None
    return before, after


def check(engine: Engine) -> None:
    """Refuse a database whose schema is not the one this code was written for."""
    with engine.connect() as connection:
        found = current_revision(connection)
    head = head_revision()
    if found == head:
        return
    plain = engine.url.set(drivername=engine.url.get_backend_name())
    where = plain.render_as_string(hide_password=True)
    if found is None:
        raise SchemaOutdatedError(
            f"the registry database {where} has no schema yet: run `{UPGRADE_COMMAND}` first"
        )
    known = {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
    if found not in known:
        raise SchemaOutdatedError(
            f"the registry database {where} is at schema revision {found}, newer than this "
            f"code ({head}): upgrade backprop-serve before serving from it"
        )
    raise SchemaOutdatedError(
        f"the registry database {where} is at schema revision {found}, older than this code "
        f"needs ({head}): run `{UPGRADE_COMMAND}`"
    )
