"""Alembic environment: migrate the connection the caller hands over.

``service.registry.migrate`` opens the connection (under an advisory lock on
PostgreSQL) and passes it in ``config.attributes["connection"]``; there is no
alembic.ini and no URL here.
"""

from __future__ import annotations

from alembic import context

from service.registry.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
