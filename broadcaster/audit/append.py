"""Appending to the audit chain, serialised, as the caller's transaction commits.

``record`` only queues an entry on the session; just before the transaction commits, the queued entries take
the next positions of the chain, each hashed over the previous one. Taking positions at commit keeps the
chain-head lock short and last: on PostgreSQL the head row is locked ``FOR UPDATE`` (every appender takes
turns, and a transaction holding it waits for nothing else, so it cannot be part of a deadlock); on SQLite the
write transaction's ``BEGIN IMMEDIATE`` already makes writers take turns. An entry queued in a savepoint that
rolls back, or in a transaction that rolls back, is dropped with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction

from broadcaster.audit.chain import GENESIS, entry_hash
from broadcaster.db.models import AuditChainHead, AuditEntry

_QUEUE = "broadcaster.audit.queue"
HEAD_ID = 1
_LOG = cast(Table, AuditEntry.__table__)
_HEAD = cast(Table, AuditChainHead.__table__)
# Built once: every commit that appends runs these three.
_READ_HEAD = select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == HEAD_ID).with_for_update()
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == HEAD_ID)
    .values(last_id=bindparam("b_last_id"), last_hash=bindparam("b_last_hash"))
)
_APPEND = insert(_LOG)


@dataclass
class _Queued:
    transaction: SessionTransaction
    fields: dict[str, Any]


def queue_entry(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    reason: str | None,
    details: Any,
) -> None:
    """Queue an entry to be chained when the session's transaction commits (or dropped with it)."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        transaction = session.begin()
    fields = {
        "at": at,
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "reason": reason,
        "details": details,
    }
    session.info.setdefault(_QUEUE, []).append(_Queued(transaction, fields))


def _last_entry(session: Session) -> tuple[int, str]:
    last = session.execute(
        select(AuditEntry.id, AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    return (last.id, last.entry_hash) if last else (0, GENESIS)


@event.listens_for(Session, "before_commit")
def _chain_queued(session: Session) -> None:
    queued: list[_Queued] = session.info.pop(_QUEUE, [])
    if not queued:
        return
    # Core statements, not ORM objects: a sending window appends an entry per commit, and the ORM's flush
    # would cost more than the entry itself (benchmarks/README.md, the audit's cost).
    connection = session.connection()
    locked = connection.execute(_READ_HEAD).first()
    if locked is None:  # a database without the migration's head row: start it from the last entry
        last_id, last_hash = _last_entry(session)
        connection.execute(insert(_HEAD).values(id=HEAD_ID, last_id=last_id, last_hash=last_hash))
    else:
        last_id, last_hash = locked.last_id, locked.last_hash
    rows: list[dict[str, Any]] = []
    for item in queued:
        position = last_id + 1
        digest = entry_hash(id=position, prev_hash=last_hash, **item.fields)
        rows.append({"id": position, "prev_hash": last_hash, "entry_hash": digest, **item.fields})
        last_id, last_hash = position, digest
    connection.execute(_APPEND, rows)
    connection.execute(_MOVE_HEAD, {"b_last_id": last_id, "b_last_hash": last_hash})


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    queued: list[_Queued] = session.info.get(_QUEUE, [])
    if queued:
        session.info[_QUEUE] = [q for q in queued if not _within(q.transaction, previous_transaction)]


@event.listens_for(Session, "after_transaction_end")
def _forget_on_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: committed (queue empty) or not
        session.info.pop(_QUEUE, None)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False
