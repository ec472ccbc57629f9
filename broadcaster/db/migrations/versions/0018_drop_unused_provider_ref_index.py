"""drop ix_messages_provider_ref: no query looks a message up by its provider id (receipts and bounces match
message_parts, or the message id a bounce carries), and every new version of a message row paid for an entry in it

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 20:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_messages_provider_ref", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_provider_ref", "messages", ["provider", "provider_ref"])
