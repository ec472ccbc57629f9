"""consent ledger: grants and withdrawals per address, channel and purpose; the contacts' opt-out flags move
into it as withdrawals and are dropped

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 19:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RECORDED_BY = "migration 0005"
# A flag said "send nothing more on this channel": it becomes a withdrawal for every purpose that needs none.
PURPOSES = ("public_information", "advertising")
FLAGS = (("sms", "sms_opt_out", "phone"), ("email", "email_opt_out", "email"))

events = sa.table(
    "consent_events",
    sa.column("channel", sa.String),
    sa.column("address", sa.String),
    sa.column("purpose", sa.String),
    sa.column("action", sa.String),
    sa.column("source", sa.String),
    sa.column("notice_version", sa.String),
    sa.column("evidence", sa.Text),
    sa.column("reason", sa.Text),
    sa.column("recorded_by", sa.String),
    sa.column("recorded_at", sa.DateTime(timezone=True)),
)
contacts = sa.table(
    "contacts",
    sa.column("id", sa.Integer),
    sa.column("phone", sa.String),
    sa.column("email", sa.String),
    sa.column("sms_opt_out", sa.Boolean),
    sa.column("email_opt_out", sa.Boolean),
)


def _address_key(channel: str, address: str) -> str:
    # As consent.suppression.address_key (frozen here: a migration does not follow later code).
    return address.lower() if channel == "email" else address


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("notice_version", sa.String(length=64), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events") as batch:
        batch.create_index(
            "ix_consent_events_lookup", ["channel", "address", "purpose", "recorded_at"], unique=False
        )
    _move_flags_into_the_ledger()
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("sms_opt_out")
        batch.drop_column("email_opt_out")


def _move_flags_into_the_ledger() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    seen: set[tuple[str, str]] = set()
    for channel, flag, column in FLAGS:
        query = (
            sa.select(contacts.c.id, contacts.c[column])
            .where(contacts.c[flag] == sa.true(), contacts.c[column].is_not(None))
            .order_by(contacts.c.id)
        )
        for contact_id, address in connection.execute(query):
            key = (channel, _address_key(channel, address))
            if key in seen:  # two contacts with one address: one withdrawal says it
                continue
            seen.add(key)
            for purpose in PURPOSES:
                rows.append(
                    {
                        "channel": channel,
                        "address": key[1],
                        "purpose": purpose,
                        "action": "withdraw",
                        "source": "migration",
                        "notice_version": None,
                        "evidence": f"contacts.{flag} of contact {contact_id}",
                        "reason": None,
                        "recorded_by": RECORDED_BY,
                        "recorded_at": now,
                    }
                )
    if rows:
        op.bulk_insert(events, rows)


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("sms_opt_out", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("email_opt_out", sa.Boolean(), nullable=False, server_default=sa.false()))
    # A flag comes back for every address whose latest public-information event is a withdrawal.
    connection = op.get_bind()
    latest: dict[tuple[str, str], str] = {}
    query = (
        sa.select(events.c.channel, events.c.address, events.c.action)
        .where(events.c.purpose == "public_information")
        .order_by(events.c.recorded_at, sa.literal_column("id"))
    )
    for channel, address, action in connection.execute(query):
        latest[(channel, address)] = action
    for (channel, address), action in latest.items():
        if action != "withdraw":
            continue
        _flag, column = {c: (f, col) for c, f, col in FLAGS}[channel]
        target = sa.func.lower(contacts.c[column]) if channel == "email" else contacts.c[column]
        connection.execute(sa.update(contacts).where(target == address).values({_flag: True}))
    with op.batch_alter_table("contacts") as batch:
        batch.alter_column(
            "sms_opt_out", server_default=None, existing_type=sa.Boolean(), existing_nullable=False
        )
        batch.alter_column(
            "email_opt_out", server_default=None, existing_type=sa.Boolean(), existing_nullable=False
        )
    with op.batch_alter_table("consent_events") as batch:
        batch.drop_index("ix_consent_events_lookup")
    op.drop_table("consent_events")
