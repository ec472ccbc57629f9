"""audit chain: entries numbered 1, 2, 3… and hash-chained, a chain-head row, triggers refusing UPDATE and
DELETE on audit_log; messages keep the hashes of their address and content after retention

Entries written before the chain existed are masked once (an address in a test send's recipients, say) and
then chained in their order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# The chain's encoding never changes (broadcaster/audit/chain.py), so the migration may use it.
from broadcaster.audit.chain import GENESIS, entry_hash, json_value
from channels.masking import mask_address, mask_text

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ADDRESS = r"\+?\d{9,15}|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"

audit_log = sa.table(
    "audit_log",
    sa.column("id", sa.BigInteger),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("subject_type", sa.String),
    sa.column("subject_id", sa.String),
    sa.column("reason", sa.Text),
    sa.column("details", sa.JSON),
    sa.column("prev_hash", sa.String),
    sa.column("entry_hash", sa.String),
)

PG_REFUSE = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""
PG_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)
SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {verb} refused'); END"
    for verb in ("UPDATE", "DELETE")
)


def _mask(value: object) -> object:
    if isinstance(value, str):
        return mask_address(value) if re.fullmatch(_ADDRESS, value.strip()) else value
    if isinstance(value, dict):
        return {key: _mask(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item) for item in value]
    return value


def _utc(moment: object) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    assert isinstance(moment, datetime)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
    last_id, last_hash = _chain_existing_entries()
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_index("ix_audit_log_at", ["at"], unique=False)
    head = op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_id", _BIG_ID, nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.bulk_insert(head, [{"id": 1, "last_id": last_id, "last_hash": last_hash}])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("address_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_messages_channel_address_hash", ["channel", "address_hash"], unique=False)
    _install_triggers()


def _chain_existing_entries() -> tuple[int, str]:
    """Renumber the entries 1…n in their order, mask what needs masking, chain them; the last (id, hash)."""
    connection = op.get_bind()
    rows = connection.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings().all()
    prev_hash = GENESIS
    for position, row in enumerate(rows, start=1):
        fields = {
            "at": _utc(row["at"]),
            "actor": row["actor"],
            "action": row["action"],
            "subject_type": row["subject_type"],
            "subject_id": row["subject_id"],
            "reason": mask_text(row["reason"]),
            "details": json_value(_mask(row["details"] or {})),
        }
        digest = entry_hash(id=position, prev_hash=prev_hash, **fields)
        connection.execute(
            audit_log.update()
            .where(audit_log.c.id == row["id"])
            .values(
                id=position,
                reason=fields["reason"],
                details=fields["details"],
                prev_hash=prev_hash,
                entry_hash=digest,
            )
        )
        prev_hash = digest
    return len(rows), prev_hash


def _install_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_REFUSE)
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER audit_log_no_update_delete ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_log_no_{verb}")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_channel_address_hash")
        batch.drop_column("redacted_at")
        batch.drop_column("content_hash")
        batch.drop_column("address_hash")
    op.drop_table("audit_chain_head")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_at")
        batch.drop_column("entry_hash")
        batch.drop_column("prev_hash")
