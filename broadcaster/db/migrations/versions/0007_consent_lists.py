"""consent lists: messages carry their address key and purpose; the do-not-call register and its imports, per-campaign exclusion lists, the city app's
request nonces (replay protection) and the tombstones of data-subject erasures

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 20:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


messages = sa.table(
    "messages",
    sa.column("id", sa.Integer),
    sa.column("channel", sa.String),
    sa.column("address", sa.String),
    sa.column("address_key", sa.String),
    sa.column("purpose", sa.String),
    sa.column("version_id", sa.Integer),
)
versions = sa.table("campaign_versions", sa.column("id", sa.Integer), sa.column("definition", sa.JSON))


def _messages_columns() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("address_key", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("purpose", sa.String(length=32), nullable=True))
        batch.create_index("ix_messages_channel_address_key", ["channel", "address_key"])
    # As consent.suppression.address_key (frozen here: a migration does not follow later code).
    op.execute(
        messages.update().values(
            address_key=sa.case(
                (messages.c.channel == "email", sa.func.lower(messages.c.address)), else_=messages.c.address
            )
        )
    )
    bind = op.get_bind()
    for version_id, definition in bind.execute(sa.select(versions.c.id, versions.c.definition)).all():
        purpose = (definition or {}).get("purpose") if isinstance(definition, dict) else None
        if purpose:
            bind.execute(messages.update().where(messages.c.version_id == version_id).values(purpose=purpose))


def upgrade() -> None:
    _messages_columns()
    op.create_table(
        "do_not_call_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("numbers", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_do_not_call_imports")),
    )
    op.create_table(
        "do_not_call",
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_do_not_call")),
    )
    op.create_table(
        "campaign_exclusions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("list_name", sa.String(length=255), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_exclusions")),
        sa.UniqueConstraint(
            "campaign_id",
            "channel",
            "address",
            name=op.f("uq_campaign_exclusions_campaign_id_channel_address"),
        ),
    )
    op.create_table(
        "app_request_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_app_request_nonces")),
    )
    op.create_table(
        "subject_erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("erased_by", sa.String(length=100), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_erasures")),
    )
    op.create_index(op.f("ix_subject_erasures_subject_hash"), "subject_erasures", ["subject_hash"])


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_channel_address_key")
        batch.drop_column("purpose")
        batch.drop_column("address_key")
    op.drop_index(op.f("ix_subject_erasures_subject_hash"), table_name="subject_erasures")
    op.drop_table("subject_erasures")
    op.drop_table("app_request_nonces")
    op.drop_table("campaign_exclusions")
    op.drop_table("do_not_call")
    op.drop_table("do_not_call_imports")
