"""The single-host schema, as the SQLite registry created it before migrations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "versions",
        sa.Column("version", sa.Text, primary_key=True),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default=sa.text("'ok'")),
        sa.Column("reason", sa.Text),
    )
    op.create_table(
        "state",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text),
    )
    op.create_table(
        "jobs",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Text, nullable=False, unique=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("data", sa.LargeBinary),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("started_at", sa.Text),
        sa.Column("finished_at", sa.Text),
        sa.Column("progress", sa.Text),
        sa.Column("history", sa.Text, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("cancel_requested", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("owner_pid", sa.Integer),
        sa.Column("heartbeat_at", sa.Float),
        sqlite_autoincrement=True,
    )
    op.create_index("jobs_status", "jobs", ["status", "seq"])


def downgrade() -> None:
    op.drop_index("jobs_status", "jobs")
    op.drop_table("jobs")
    op.drop_table("state")
    op.drop_table("versions")
