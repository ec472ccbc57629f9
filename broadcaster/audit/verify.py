"""Checking the audit chain: every entry's hash, its link to the previous one, no gap in the positions, and
the chain head's record of the last entry (docs/audit.md). Streams the log: memory does not grow with it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.audit.append import HEAD_ID
from broadcaster.audit.chain import GENESIS, row_hash
from broadcaster.db.models import AuditChainHead, AuditEntry

_BATCH = 5_000


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold: the entry (its position) and what is wrong with it."""

    entry_id: int
    problem: str
    at: datetime | None = None
    action: str | None = None


@dataclass(frozen=True)
class Verdict:
    """``entries`` checked; ``last_id``/``last_hash`` the chain's end; ``broken`` the first break, if any."""

    entries: int
    last_id: int
    last_hash: str
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _rows(session: Session) -> Iterator[AuditEntry]:
    """The entries in position order, a batch at a time (keyset pagination: no long-held cursor)."""
    after = 0
    while True:
        batch = session.scalars(
            select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(_BATCH)
        ).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].id
        session.expunge_all()


def verify_chain(session: Session) -> Verdict:
    """Walk the whole chain and stop at the first entry that breaks it."""
    expected_id, prev_hash, count = 1, GENESIS, 0
    for row in _rows(session):
        problem = _problem(row, expected_id, prev_hash)
        if problem is not None:
            broken_id = min(row.id, expected_id)
            return Verdict(count, expected_id - 1, prev_hash, Break(broken_id, problem, row.at, row.action))
        count += 1
        expected_id, prev_hash = row.id + 1, row.entry_hash
    last_id = expected_id - 1
    head = session.get(AuditChainHead, HEAD_ID)
    if head is not None and (head.last_id, head.last_hash) != (last_id, prev_hash):
        if head.last_id > last_id:
            problem = f"the chain head records {head.last_id} entries but the log ends at {last_id}"
            return Verdict(count, last_id, prev_hash, Break(last_id + 1, problem))
        problem = f"the log continues past the chain head's last entry {head.last_id}, or its hash differs"
        return Verdict(count, last_id, prev_hash, Break(min(head.last_id + 1, last_id), problem))
    return Verdict(count, last_id, prev_hash, None)


def _problem(row: AuditEntry, expected_id: int, prev_hash: str) -> str | None:
    if row.id > expected_id:
        return f"entries {expected_id}–{row.id - 1} are missing" if row.id > expected_id + 1 else "missing"
    if row.prev_hash != prev_hash:
        return "does not link to the previous entry (prev_hash differs): removed, inserted or reordered"
    if row_hash(row) != row.entry_hash:
        return "its content does not match its hash: changed after it was written"
    return None
