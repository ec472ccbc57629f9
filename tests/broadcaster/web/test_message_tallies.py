"""A run's and a campaign's counts by channel and status, read from ``message_tallies`` (kept by triggers,
migration 0013), are the plain count of the messages: for a run still sending and for a finished one, after
every kind of write to ``messages`` (insert, status change, a message moved to another run, channel or kind,
delete), and after the migration counted an existing outbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import delete, select, update

from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from broadcaster.db.migrate import alembic_config, upgrade
from broadcaster.db.models import CampaignRun, Message
from broadcaster.outbox.sending import start_manual_run
from broadcaster.progress import run_progress
from broadcaster.status import (
    campaign_counts,
    campaign_status,
    counted_runs,
    message_counts,
    run_counts,
    runs_message_counts,
    tallied_runs,
)
from broadcaster.vocabulary import MessageKind, MessageStatus, RunStatus
from tests.broadcaster.web.campaign_setup import CAMPAIGN, approve_campaign, load_campaign, plan, user_named


def _run(context: AppContext, *, again: bool = False) -> int:
    with context.sessions.begin() as session:
        run_id = start_manual_run(
            session,
            campaign_id=CAMPAIGN,
            actor=user_named(session, "bien_tap"),
            clock=context.clock,
            again=again,
        )
    plan(context, run_id)
    return run_id


def _first_run(context: AppContext, workdir: Path) -> int:
    load_campaign(context, workdir)
    approve_campaign(context)
    return _run(context)


def _same_as_counted(context: AppContext, run_ids: list[int]) -> dict[int, dict[str, dict[str, int]]]:
    """The tallies equal the plain count, row for row, for the runs and for the campaign (test sends apart);
    returns what the services show of the runs."""
    with context.readers() as session:
        tallied, counted = tallied_runs(session, run_ids), counted_runs(session, run_ids)
        shown = runs_message_counts(session, run_ids)
        for tests, where in ((True, {"kind": MessageKind.TEST}), (False, {"exclude_kind": MessageKind.TEST})):
            assert campaign_counts(session, CAMPAIGN, tests=tests) == message_counts(
                session, campaign_id=CAMPAIGN, **where
            )
    assert tallied == counted
    assert sum(count for *_, count in counted) > 0
    return shown


def _set_status(context: AppContext, run_id: int, status: MessageStatus, how_many: int) -> list[int]:
    with context.sessions.begin() as session:
        ids = list(
            session.scalars(
                select(Message.id)
                .where(Message.run_id == run_id, Message.status == MessageStatus.QUEUED)
                .order_by(Message.id)
                .limit(how_many)
            )
        )
        assert len(ids) == how_many, "the fixture plans too few messages"
        session.execute(update(Message).where(Message.id.in_(ids)).values(status=status))
    return ids


def test_kept_counts_follow_every_write_of_a_running_and_a_finished_run(
    context: AppContext, workdir: Path, people: object, contacts: ImportReport
) -> None:
    first = _first_run(context, workdir)
    planned = _same_as_counted(context, [first])[first]
    assert sum(per.get("queued", 0) for per in planned.values()) >= 3

    sending = _set_status(context, first, MessageStatus.SENDING, 2)
    _set_status(context, first, MessageStatus.DELIVERED, 1)
    with context.sessions.begin() as session:  # the ORM's unit of work: one row, one column
        message = session.get(Message, sending[0])
        assert message is not None
        message.status = MessageStatus.SENT
        session.get(Message, sending[1]).reason = "no status change"  # type: ignore[union-attr]
    live = _same_as_counted(context, [first])[first]
    assert sum(per.get("sent", 0) for per in live.values()) == 1
    assert sum(per.get("sending", 0) for per in live.values()) == 1
    with context.readers() as session:
        assert session.get(CampaignRun, first).status in (RunStatus.PLANNING, RunStatus.SENDING)  # type: ignore[union-attr]
    progress = run_progress(context, first)
    assert (progress.planned, progress.done) == (
        sum(n for per in live.values() for n in per.values()),
        sum(n for per in live.values() for s, n in per.items() if s not in ("queued", "sending")),
    )

    # The first run finishes; a second one starts and is still queued.
    with context.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.run_id == first, Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING]))
            .values(status=MessageStatus.PERMANENT_FAILURE)
        )
        session.execute(update(CampaignRun).where(CampaignRun.id == first).values(status=RunStatus.COMPLETED))
    context.clock.sleep(timedelta(hours=1).total_seconds())
    second = _run(context, again=True)
    both = _same_as_counted(context, [first, second])
    assert not any(set(per) & {"queued", "sending"} for per in both[first].values())
    assert sum(per.get("queued", 0) for per in both[second].values()) >= 3
    with context.readers() as session:
        status = campaign_status(session, CAMPAIGN)
    assert {run["id"]: run["messages"] for run in status["runs"]} == both

    # A message moved to the other run and another channel, one out of every run as a test send, one deleted.
    with context.sessions.begin() as session:
        moved, tested, deleted = session.scalars(
            select(Message.id).where(Message.run_id == second).order_by(Message.id).limit(3)
        ).all()
        session.execute(update(Message).where(Message.id == moved).values(run_id=first, channel="zalo"))
        for change in ({"run_id": None}, {"kind": MessageKind.TEST}):  # each column on its own
            session.execute(update(Message).where(Message.id == tested).values(**change))
        session.execute(delete(Message).where(Message.id == deleted))
    after = _same_as_counted(context, [first, second])
    assert after[first]["zalo"] == {"queued": 1}
    with context.readers() as session:
        assert (
            sum(n for per in campaign_counts(session, CAMPAIGN, tests=True).values() for n in per.values())
            == 1
        )
    with context.readers() as session:
        assert run_counts(session, second) == after[second]


def test_the_migration_counts_the_messages_already_there(
    context: AppContext, workdir: Path, people: object, contacts: ImportReport
) -> None:
    run_id = _first_run(context, workdir)
    _set_status(context, run_id, MessageStatus.DELIVERED, 2)
    before = _same_as_counted(context, [run_id])
    context.close()

    url = context.settings.database_url
    with context.engine.begin() as connection:  # back to before the table, then up again: a backfill
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.downgrade(config, "0012")
    upgrade(url)
    reopened = AppContext.load(workdir / "broadcaster.toml", clock=context.clock)
    try:
        assert _same_as_counted(reopened, [run_id]) == before
    finally:
        reopened.close()
