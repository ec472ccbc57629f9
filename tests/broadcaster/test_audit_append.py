"""Appending at commit with Core statements: several entries of one commit chain in order, and a database
whose chain head row is missing gets one from its last entry."""

from __future__ import annotations

from sqlalchemy import delete, select

from broadcaster import audit
from broadcaster.audit.verify import verify_chain
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import AuditChainHead, AuditEntry


def append(context: AppContext, clock: FrozenClock, *subjects: str) -> None:
    with context.sessions.begin() as session:
        for subject in subjects:
            audit.record(
                session,
                actor="test",
                action="test.append",
                subject_type="t",
                subject_id=subject,
                at=clock.now(),
            )


def test_entries_of_one_commit_and_of_a_missing_head_chain_in_order(
    context: AppContext, clock: FrozenClock
) -> None:
    append(context, clock, "a", "b", "c")
    with context.sessions.begin() as session:
        session.execute(delete(AuditChainHead))
    append(context, clock, "d")

    with context.readers() as session:
        rows = list(session.execute(select(AuditEntry.id, AuditEntry.subject_id).order_by(AuditEntry.id)))
        head = session.get(AuditChainHead, 1)
        assert verify_chain(session).ok
    ours = [subject for _id, subject in rows if subject in "abcd"]
    assert ours == ["a", "b", "c", "d"]
    assert [i for i, _s in rows] == list(range(1, len(rows) + 1))
    assert head is not None
    assert head.last_id == len(rows)
