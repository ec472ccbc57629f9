"""heartbeats and alert_incidents: the tick's last run and the alerts told to the admins (docs/supervision.md)

Revision ID: 0017
Revises: 0014
Create Date: 2026-11-30 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db.types

revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("beat_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_heartbeats")),
    )
    op.create_table(
        "alert_incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("opened_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("resolved_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution_notified_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_incidents")),
    )
    op.create_index("ix_alert_incidents_key_resolved_at", "alert_incidents", ["key", "resolved_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_incidents_key_resolved_at", table_name="alert_incidents")
    op.drop_table("alert_incidents")
    op.drop_table("heartbeats")
