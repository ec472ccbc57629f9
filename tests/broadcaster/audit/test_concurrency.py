"""Several OS processes appending at once never fork the chain nor leave a gap (SQLite file and PostgreSQL);
an entry recorded in a savepoint or transaction that rolls back is not in the chain."""

from __future__ import annotations

import multiprocessing
from itertools import pairwise

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.audit.verify import verify_chain
from broadcaster.db.models import AuditEntry
from tests.broadcaster.audit.appenders import append
from tests.broadcaster.audit.conftest import Installation, last_id

PROCESSES = 4
EACH = 200


@pytest.mark.slow
def test_concurrent_processes_append_one_unbroken_chain(installation: Installation) -> None:
    before = last_id(installation.engine)
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(PROCESSES)
    config = str(installation.directory / "broadcaster.toml")
    workers = [spawn.Process(target=append, args=(config, n, EACH, barrier)) for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    verified_meanwhile = []
    while any(worker.is_alive() for worker in workers):  # verifying while they append: never a false alarm
        with installation.context.readers() as session:
            verified_meanwhile.append(verify_chain(session))
    for worker in workers:
        worker.join(timeout=300)
    assert verified_meanwhile
    assert [v.broken for v in verified_meanwhile if not v.ok] == []
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    with Session(installation.engine) as session:
        verdict = verify_chain(session)
        rows = session.execute(
            select(AuditEntry.actor, AuditEntry.subject_id)
            .where(AuditEntry.id > before)
            .order_by(AuditEntry.id)
        ).all()
    assert verdict.ok, verdict.broken
    assert verdict.entries == verdict.last_id == before + PROCESSES * EACH
    for n in range(PROCESSES):
        mine = [subject for actor, subject in rows if actor == f"p{n}"]
        assert mine == [f"{n}:{i}" for i in range(EACH)]  # all of them, in each process's commit order
    interleaved = sum(1 for a, b in pairwise(rows) if a.actor != b.actor)
    assert interleaved > PROCESSES  # they did run at the same time, not one after another


def _record(session: Session, subject: str, installation: Installation) -> None:
    audit.record(
        session, actor="quan_tri", action="test.rollback", subject_type="test", subject_id=subject,
        at=installation.clock.now(),
    )  # fmt: skip


def test_rolled_back_entries_are_not_chained(installation: Installation) -> None:
    before = last_id(installation.engine)
    with installation.context.sessions() as session:
        with session.begin():
            _record(session, "kept-1", installation)
            savepoint = session.begin_nested()
            _record(session, "in-rolled-back-savepoint", installation)
            savepoint.rollback()
            with session.begin_nested():
                _record(session, "in-released-savepoint", installation)
            _record(session, "kept-2", installation)
        session.begin()
        _record(session, "in-rolled-back-transaction", installation)
        session.rollback()
        with session.begin():
            _record(session, "after-the-rollback", installation)

    with Session(installation.engine) as session:
        verdict = verify_chain(session)
        subjects = session.scalars(
            select(AuditEntry.subject_id).where(AuditEntry.id > before).order_by(AuditEntry.id)
        ).all()
    assert verdict.ok, verdict.broken
    assert subjects == ["kept-1", "in-released-savepoint", "kept-2", "after-the-rollback"]
    assert verdict.last_id == before + 4
