"""``ix_messages_status_not_before`` ends with ``id``: the oldest undeferred queued message is then the first
entry of ``(status = 'queued', not_before IS NULL)`` on PostgreSQL too (docs/architecture.md, "The oldest
queued message"). Without it PostgreSQL answered the backlog's question by walking the primary key from the
first message ever written, past every settled one: 0.3–1.6 s on each tick a third of the way through a
three-million-message run, and more as the run went on. SQLite's index entries already end with the rowid,
the id; its statistics (migration 0022) gain the new column's figure.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

INDEX = "ix_messages_status_not_before"


def _rebuild(columns: list[str], sqlite_stat: str) -> None:
    op.drop_index(INDEX, table_name="messages")
    op.create_index(INDEX, "messages", columns)
    if op.get_bind().dialect.name == "sqlite":
        # DROP INDEX took the index's row out of sqlite_stat1 (if an ANALYZE left measured figures, the
        # table's others stay).
        op.get_bind().execute(
            sa.text("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('messages', :index, :stat)"),
            {"stat": sqlite_stat, "index": INDEX},
        )
        op.execute("ANALYZE sqlite_schema")  # this connection reads them now; others when they open


def upgrade() -> None:
    _rebuild(["status", "not_before", "id"], "1000000 125000 100 1")


def downgrade() -> None:
    _rebuild(["status", "not_before"], "1000000 125000 100")
