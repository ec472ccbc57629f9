"""inbox replies: SMS replies that are not an opt-out keyword, for staff to read and mark handled

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_replies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("inbound_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("handled", sa.Boolean(), nullable=False),
        sa.Column("handled_at", broadcaster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handled_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_replies")),
        sa.UniqueConstraint("inbound_id", name=op.f("uq_inbox_replies_inbound_id")),
    )


def downgrade() -> None:
    op.drop_table("inbox_replies")
