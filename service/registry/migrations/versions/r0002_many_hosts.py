"""Many hosts: job leases fenced by attempt, one version per job, a notified pointer.

- jobs: ``owner`` (host:pid:start), ``attempt`` and ``lease_expires_at`` (judged
  by the database's clock) replace the owner's pid;
- versions: the job and attempt that registered each one, unique per job;
- active_pointer: one row with the active version and a generation number that
  every activation bumps (replicas compare generations, not names); it takes
  over the ``active_version`` key of the old ``state`` table.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("owner", sa.Text))
        jobs.add_column(
            sa.Column("attempt", sa.Integer, nullable=False, server_default=sa.text("0"))
        )
        jobs.add_column(sa.Column("lease_expires_at", sa.Float))
    with op.batch_alter_table("versions") as versions:
        versions.add_column(sa.Column("job_id", sa.Text))
        versions.add_column(sa.Column("attempt", sa.Integer))
    op.create_index("versions_job_id", "versions", ["job_id"], unique=True)
    pointer = op.create_table(
        "active_pointer",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Text),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("changed_at", sa.Text),
        sa.CheckConstraint("id = 1", name="active_pointer_one_row"),
    )
    state = sa.table("state", sa.column("key", sa.Text), sa.column("value", sa.Text))
    bind = op.get_bind()
    active = bind.execute(
        sa.select(state.c.value).where(state.c.key == "active_version")
    ).scalar_one_or_none()
    op.bulk_insert(pointer, [{"id": 1, "version": active, "generation": 1 if active else 0}])
    # a running job of the single-host schema has no lease: it expires at once
    bind.execute(sa.text("UPDATE jobs SET attempt = 1 WHERE status = 'running'"))
    op.drop_table("state")


def downgrade() -> None:
    state = op.create_table(
        "state",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text),
    )
    pointer = sa.table("active_pointer", sa.column("version", sa.Text))
    active = op.get_bind().execute(sa.select(pointer.c.version)).scalar_one_or_none()
    if active is not None:
        op.bulk_insert(state, [{"key": "active_version", "value": active}])
    op.drop_table("active_pointer")
    op.drop_index("versions_job_id", "versions")
    with op.batch_alter_table("versions") as versions:
        versions.drop_column("attempt")
        versions.drop_column("job_id")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("lease_expires_at")
        jobs.drop_column("attempt")
        jobs.drop_column("owner")
