"""crash hand-back: which worker claimed a message and when it was handed over, who runs a chunk, and the
run status completed_with_held

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD_RUN_STATUSES = ("planning", "sending", "completed", "cancelled")
NEW_RUN_STATUSES = ("planning", "sending", "completed", "completed_with_held", "cancelled")


def _run_status(values: tuple[str, ...], length: int) -> sa.Enum:
    return sa.Enum(*values, name="runstatus", native_enum=False, create_constraint=True, length=length)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
        batch.add_column(
            sa.Column("handed_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    # Rows in flight during the upgrade may be at the provider: count them as handed over.
    op.execute("UPDATE messages SET handed_at = claimed_at WHERE status = 'sending'")
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("worker", sa.String(length=100), nullable=True))
    # The CHECK constraint lists the statuses: drop it and let the wider type create the new one.
    with op.batch_alter_table("campaign_runs") as batch:
        batch.drop_constraint("runstatus", type_="check")
    with op.batch_alter_table("campaign_runs") as batch:
        batch.alter_column(
            "status",
            existing_type=sa.String(length=16),
            type_=_run_status(NEW_RUN_STATUSES, 24),
            existing_nullable=False,
        )


def downgrade() -> None:
    op.execute("UPDATE campaign_runs SET status = 'completed' WHERE status = 'completed_with_held'")
    with op.batch_alter_table("campaign_runs") as batch:
        batch.drop_constraint("runstatus", type_="check")
    with op.batch_alter_table("campaign_runs") as batch:
        batch.alter_column(
            "status",
            existing_type=sa.String(length=24),
            type_=_run_status(OLD_RUN_STATUSES, 16),
            existing_nullable=False,
        )
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("worker")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("handed_at")
        batch.drop_column("claimed_by")
