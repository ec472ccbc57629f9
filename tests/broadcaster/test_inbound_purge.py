"""Old raw inbound records go (broadcaster/retention.py ``purge_inbound``): applied ones received more than
``[retention] inbound_days`` ago are deleted, their delivery events stay (without the link), unapplied and
recent ones stay; the tick does it with the day's retention, and ``retention run`` too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.beat import describe_tick
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.migrate import upgrade
from broadcaster.db.models import AuditEntry, DeliveryEventRow, InboundRecord
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.retention import inbound_cutoff, purge_inbound
from broadcaster.tasks import engine_tick
from broadcaster.users import add_user
from broadcaster.vocabulary import Role
from tests.broadcaster.conftest import ADMIN_LOGIN, START

DAYS = 90  # the default [retention] inbound_days


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def db_context(
    request: pytest.FixtureRequest, workdir: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppContext]:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("BROADCASTER_DATABASE__URL", url)
        upgrade(url)
    ctx = AppContext.load(workdir / "broadcaster.toml", clock=clock)
    if request.param == "postgresql":
        with ctx.sessions.begin() as session:
            add_user(session, actor=ADMIN_LOGIN, login=ADMIN_LOGIN, role=Role.ADMIN, clock=clock)
    yield ctx
    ctx.close()


def seed(context: AppContext, *, old_applied: int = 3) -> dict[str, list[int]]:
    """Applied records at START (one with a delivery event), one unapplied at START, one applied a day before
    the clock jumps; then the clock is ``DAYS`` + 1 days past START."""
    day = timedelta(days=1)
    with context.sessions.begin() as session:

        def add(received: timedelta, *, applied: bool) -> int:
            at = START + received
            record = InboundRecord(
                provider="sms_main",
                channel="sms",
                received_at=at,
                payload={"receipted_message_id": f"m{received}"},
                processed_at=at if applied else None,
                outcome="applied" if applied else None,
            )
            session.add(record)
            session.flush()
            return record.id

        old = [add(timedelta(seconds=n), applied=True) for n in range(old_applied)]
        open_ = [add(timedelta(0), applied=False)]
        recent = [add(DAYS * day, applied=True)]
        session.add(
            DeliveryEventRow(
                dedupe_key="sms_main:m0:delivered",
                inbound_id=old[0],
                provider="sms_main",
                provider_id="m0",
                type="delivered",
                recorded_at=START,
            )
        )
    context.clock.advance((DAYS + 1) * day)  # type: ignore[attr-defined]
    return {"old": old, "open": open_, "recent": recent}


def purge(context: AppContext, *, dry_run: bool = False, limit: int | None = None) -> tuple[int, bool]:
    """One purge in its own transaction, at the clock's now."""
    now = context.clock.now()
    with context.sessions.begin() as session:
        cutoff = inbound_cutoff(context.settings, now)
        return purge_inbound(session, cutoff=cutoff, now=now, dry_run=dry_run, limit=limit)


def remaining(context: AppContext) -> set[int]:
    with context.sessions() as session:
        return set(session.scalars(select(InboundRecord.id)))


def test_applied_records_past_the_period_are_deleted_and_their_events_stay(db_context: AppContext) -> None:
    ids = seed(db_context)
    assert purge(db_context, dry_run=True) == (3, True)
    assert remaining(db_context) == {*ids["old"], *ids["open"], *ids["recent"]}  # a dry run changes nothing
    assert purge(db_context) == (3, True)
    assert remaining(db_context) == {*ids["open"], *ids["recent"]}
    with db_context.sessions() as session:
        event = session.scalar(select(DeliveryEventRow))
        assert event is not None
        assert (event.type, event.inbound_id) == ("delivered", None)
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.inbound_purge"))
        assert entry.details["deleted"] == 3
    assert purge(db_context) == (0, True)  # a second run finds nothing


def test_a_limited_run_says_it_is_not_complete(
    db_context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("broadcaster.retention.PURGE_BATCH", 2)
    ids = seed(db_context, old_applied=5)
    runs = [purge(db_context, limit=2) for _attempt in range(4)]
    assert runs == [(2, False), (2, False), (1, True), (0, True)]
    assert remaining(db_context) == {*ids["open"], *ids["recent"]}


def test_the_tick_deletes_them_with_the_days_retention_and_says_so(db_context: AppContext) -> None:
    ids = seed(db_context)
    report = engine_tick(
        db_context.sessions,
        settings=db_context.settings,
        clock=db_context.clock,
        enqueuer=RecordingEnqueuer(),
    )
    # The tick's own pass closes the old open record first (nothing matches it): deleted too.
    assert (report.inbound_processed, report.inbound_deleted) == (1, 4)
    line = describe_tick(report)
    assert line is not None
    assert "4 raw receipt(s) or bounce(s) past retention.inbound_days deleted" in line
    assert remaining(db_context) == set(ids["recent"])
    with db_context.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryEventRow)) == 1
