"""Checking the audit chain: every entry's hash, its link to the previous one, no gap in the positions, and
the chain head's record of the last entry (docs/audit.md). Streams the log as plain rows (no ORM objects):
memory does not grow with it, and a million entries take seconds, not minutes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.audit.append import HEAD_ID
from broadcaster.audit.chain import GENESIS, row_hash
from broadcaster.db.models import AuditChainHead, AuditEntry

_BATCH = 5_000
_LOG = AuditEntry.__table__
_HEAD = AuditChainHead.__table__

# What can be wrong at an entry (``Break.kind``), so a reader can word it in its own language.
MISSING = "missing"  # positions entry_id…last_missing are absent
LINK = "link"  # prev_hash is not the previous entry's hash: removed, inserted or reordered
CONTENT = "content"  # the row does not hash to its entry_hash: changed after it was written
HEAD_AHEAD = "head_ahead"  # the chain head records entries the log does not hold (the last ones removed)
HEAD_BEHIND = "head_behind"  # the log holds entries past the head, or the head's hash differs (forged tail)


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold: the entry (its position) and what is wrong with it.

    ``at``/``action`` are those of the row found at the break (for a gap: the first row after it)."""

    entry_id: int
    problem: str
    at: datetime | None = None
    action: str | None = None
    kind: str = ""
    last_missing: int | None = None  # for ``MISSING``: the last absent position


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


def _rows(session: Session, after: int) -> Iterator[Any]:
    """The entries past position ``after`` in position order, a batch at a time (keyset pagination: no
    long-held cursor)."""
    while True:
        batch = session.execute(select(_LOG).where(_LOG.c.id > after).order_by(_LOG.c.id).limit(_BATCH)).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].id


class _Walk:
    """The chain read so far: where it ends and the first break met."""

    def __init__(self) -> None:
        self.expected_id, self.prev_hash, self.count = 1, GENESIS, 0
        self.broken: Break | None = None

    def extend(self, session: Session) -> int:
        """Read the entries past the end reached so far; how many were read."""
        read = 0
        for row in _rows(session, self.expected_id - 1):
            read += 1
            broken = _problem(row, self.expected_id, self.prev_hash)
            if broken is not None:
                self.broken = broken
                return read
            self.count += 1
            self.expected_id, self.prev_hash = row.id + 1, row.entry_hash
        return read

    def verdict(self, broken: Break | None = None) -> Verdict:
        return Verdict(self.count, self.expected_id - 1, self.prev_hash, broken or self.broken)


def verify_chain(session: Session) -> Verdict:
    """Walk the whole chain and stop at the first entry that breaks it.

    The head is read after the rows. A transaction that appends commits its rows and the head together, so
    under READ COMMITTED (PostgreSQL) a head further on than the rows read means entries committed meanwhile:
    they are read too before the head is compared. In one snapshot (SQLite) nothing new appears."""
    walk = _Walk()
    walk.extend(session)
    while walk.broken is None:
        head = session.execute(
            select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == HEAD_ID)
        ).first()
        last_id = walk.expected_id - 1
        if head is None or (head.last_id, head.last_hash) == (last_id, walk.prev_hash):
            return walk.verdict()
        if head.last_id > last_id:
            if walk.extend(session):
                continue  # entries committed while the log was read; compare with the head again
            problem = f"the chain head records {head.last_id} entries but the log ends at {last_id}"
            return walk.verdict(Break(last_id + 1, problem, kind=HEAD_AHEAD))
        problem = f"the log continues past the chain head's last entry {head.last_id}, or its hash differs"
        entry_id = min(head.last_id + 1, last_id)
        row = session.execute(select(_LOG.c.at, _LOG.c.action).where(_LOG.c.id == entry_id)).first()
        at, action = (row.at, row.action) if row is not None else (None, None)
        return walk.verdict(Break(entry_id, problem, at, action, HEAD_BEHIND))
    return walk.verdict()


def _problem(row: Any, expected_id: int, prev_hash: str) -> Break | None:
    if row.id > expected_id:
        last = row.id - 1
        problem = f"entries {expected_id}–{last} are missing" if last > expected_id else "missing"
        return Break(expected_id, problem, row.at, row.action, MISSING, last)
    if row.prev_hash != prev_hash:
        problem = "does not link to the previous entry (prev_hash differs): removed, inserted or reordered"
        return Break(row.id, problem, row.at, row.action, LINK)
    if row_hash(row) != row.entry_hash:
        return Break(row.id, "its content does not match its hash: changed after it was written", row.at,
                     row.action, CONTENT)  # fmt: skip
    return None
