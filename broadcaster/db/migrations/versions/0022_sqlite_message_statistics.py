"""SQLite: statistics for the query planner on ``messages``, written by hand (docs/architecture.md, "SQLite's
query plans at scale").

Without statistics SQLite takes ``status = ?`` to match about ten rows, so a statement that names messages by
id (or by idempotency key) and also checks their status ran through the status index instead: every queued
message of the installation for each claim of a window, every delivered one for each page of receipts. With
three million queued that was 0.6 s a statement and the SMS run slowed to under 100 messages/s. These figures
describe the table's shape at a city's scale (a million rows; a status, a run or a campaign covers many of
them, a chunk a thousand, a key one), so the plans stay the same whatever the table holds today; an
``ANALYZE`` replaces them with measured ones. PostgreSQL keeps its own statistics.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01 06:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# sqlite_stat1's "stat": the table's rows, then the average rows per distinct value of the index's first
# column, of its first two, and so on.
MESSAGE_STATISTICS = {
    "sqlite_autoindex_messages_1": "1000000 1",  # idempotency_key
    "ix_messages_status_not_before": "1000000 125000 100",
    "ix_messages_chunk_status": "1000000 1000 500",
    "ix_messages_run_status": "1000000 50000 10000",
    "ix_messages_run_channel_status": "1000000 50000 20000 5000",
    "ix_messages_campaign_kind_channel_status": "1000000 50000 50000 20000 5000",
    "ix_messages_status_channel": "1000000 125000 50000",
    "ix_messages_campaign_status": "1000000 50000 10000",
    "ix_messages_channel_address_key": "1000000 200000 2",
    "ix_messages_created_at": "1000000 100",
    "ix_messages_channel_address_hash": "1000000 200000 2",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("ANALYZE alembic_version")  # creates sqlite_stat1, which cannot be created otherwise
    op.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'messages'")
    op.get_bind().execute(
        sa.text("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('messages', :index, :stat)"),
        [{"index": index, "stat": stat} for index, stat in MESSAGE_STATISTICS.items()],
    )
    op.execute("ANALYZE sqlite_schema")  # this connection reads them now; others when they open


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'messages'")
