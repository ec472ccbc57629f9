"""indexes for the web pages over a big outbox: a run's and a campaign's counts by channel and status from an
index alone, and the message log filtered by status and channel walked newest first without a sort

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The dashboard and a campaign's page count each run's messages per channel and status: with all three
    # columns in one index SQLite answers from the index (no row read per message; benchmarks/README.md).
    op.create_index("ix_messages_run_channel_status", "messages", ["run_id", "channel", "status"])
    # ... and the campaign's own counts, its test sends apart (``status.campaign_status``), likewise.
    op.create_index(
        "ix_messages_campaign_kind_channel_status", "messages", ["campaign_id", "kind", "channel", "status"]
    )
    # ``/messages?status=…&channel=…``: equal on both, the index yields ids in order for a keyset page.
    op.create_index("ix_messages_status_channel", "messages", ["status", "channel"])


def downgrade() -> None:
    op.drop_index("ix_messages_status_channel", table_name="messages")
    op.drop_index("ix_messages_campaign_kind_channel_status", table_name="messages")
    op.drop_index("ix_messages_run_channel_status", table_name="messages")
