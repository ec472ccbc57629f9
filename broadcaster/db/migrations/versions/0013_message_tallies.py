"""message_tallies: the messages counted per campaign, run, kind, channel and status, kept by triggers on SQLite

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Every writer of ``messages`` (the engine's guarded updates, planning, retention, a raw bulk load) moves the
# tallies in its own transaction, so they are exact at every commit (docs/architecture.md, "Message tallies").
# SQLite serialises writers, so a tally row is never contended. A migration that rebuilds ``messages``
# (SQLite's batch mode copies the table) drops these triggers: it must create TRIGGERS again.
_KEY = "campaign_id, run_id, kind, channel, status"
_ADD = (
    "INSERT INTO message_tallies (campaign_id, run_id, kind, channel, status, messages) "
    "VALUES (coalesce(NEW.campaign_id, ''), coalesce(NEW.run_id, 0), NEW.kind, NEW.channel, NEW.status, 1) "
    "ON CONFLICT (campaign_id, run_id, kind, channel, status) DO UPDATE SET messages = messages + 1;"
)
_TAKE = (
    "UPDATE message_tallies SET messages = messages - 1 "
    "WHERE campaign_id = coalesce(OLD.campaign_id, '') AND run_id = coalesce(OLD.run_id, 0) "
    "AND kind = OLD.kind AND channel = OLD.channel AND status = OLD.status;"
)
_CHANGED = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in _KEY.split(", "))
TRIGGERS = (
    f"CREATE TRIGGER message_tallies_insert AFTER INSERT ON messages BEGIN {_ADD} END",
    f"CREATE TRIGGER message_tallies_update AFTER UPDATE OF {_KEY} ON messages WHEN {_CHANGED} "
    f"BEGIN {_TAKE} {_ADD} END",
    f"CREATE TRIGGER message_tallies_delete AFTER DELETE ON messages BEGIN {_TAKE} END",
)
BACKFILL = (
    "INSERT INTO message_tallies (campaign_id, run_id, kind, channel, status, messages) "
    "SELECT coalesce(campaign_id, ''), coalesce(run_id, 0), kind, channel, status, count(*) FROM messages "
    "GROUP BY 1, 2, 3, 4, 5"
)


def upgrade() -> None:
    op.create_table(
        "message_tallies",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id", "run_id", "kind", "channel", "status", name=op.f("pk_message_tallies")
        ),
    )
    op.create_index("ix_message_tallies_run_id", "message_tallies", ["run_id"])
    # PostgreSQL runs writers side by side: tally rows would serialise (and could deadlock) the workers of
    # one run, so there the table stays empty and the messages are counted.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(BACKFILL)
        for statement in TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER message_tallies_{verb}")
    op.drop_index("ix_message_tallies_run_id", table_name="message_tallies")
    op.drop_table("message_tallies")
