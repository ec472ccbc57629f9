"""rollups: daily aggregates of messages, reach and opt-outs for reports, and the frozen days

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_table(
        "rollup_days",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("plan_item", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("sms_parts", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("delivery_seconds", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_days")),
        sa.UniqueConstraint(
            "day", "campaign_id", "run_id", "plan_item", "purpose", "channel", "status", "reason",
            name="uq_rollup_days_slice",
        ),
    )  # fmt: skip
    op.create_table(
        "rollup_reach",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("plan_item", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("person", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_reach")),
        sa.UniqueConstraint("day", "plan_item", "channel", "purpose", "person", name="uq_rollup_reach"),
    )
    op.create_table(
        "rollup_opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_opt_outs")),
        sa.UniqueConstraint("day", "channel", "purpose", name="uq_rollup_opt_outs"),
    )
    op.create_table(
        "rollup_frozen_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("frozen_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("frozen_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_rollup_frozen_days")),
    )


def downgrade() -> None:
    op.drop_table("rollup_frozen_days")
    op.drop_table("rollup_opt_outs")
    op.drop_table("rollup_reach")
    op.drop_table("rollup_days")
    op.drop_index("ix_messages_created_at", table_name="messages")
