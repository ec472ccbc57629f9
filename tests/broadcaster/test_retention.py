"""Retention (broadcaster/retention.py): after ``[retention] personal_data_days`` only settled messages lose their
address and content, replaced by the hashes ``audit.hashes`` gives; pending ones, the audit chain, consent and
frozen report figures stay; a second run and a dry run change nothing; the tick runs it once a day."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from broadcaster import audit
from broadcaster.audit.hashes import address_hash, content_hash
from broadcaster.audit.verify import verify_chain
from broadcaster.cli import app
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.migrate import upgrade
from broadcaster.db.models import (
    AuditEntry,
    ContactImport,
    InboundRecord,
    InboxReply,
    Lease,
    Message,
    RollupFrozenDay,
    RollupReach,
)
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.retention import DAILY_LEASE, UNSETTLED, apply_retention, run_daily
from broadcaster.tasks import engine_tick
from broadcaster.users import add_user
from broadcaster.vocabulary import MessageKind, MessageStatus, Role
from tests.broadcaster.conftest import ADMIN_LOGIN, START, database_dump

PHONE = "+84905123456"
EMAIL = "Nguyen.A@Example.vn"
NAME = "Nguyễn Văn An"
DAY = timedelta(days=1)
AGE = timedelta(days=740)  # the clock's jump after seeding: START is then 10 days past the 730-day cutoff
ROLLUP_TABLES = ("rollup_days", "rollup_reach", "rollup_opt_outs", "rollup_frozen_days")
REDACTED = {"sms_delivered", "email_sent", "suppressed", "cancelled", "email_failed"}


def database(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def db_context(
    request: pytest.FixtureRequest, workdir: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppContext]:
    """The working directory's context, its database SQLite or a fresh PostgreSQL schema (the CLI sees the
    same one, on the same frozen clock)."""
    url = database(request)
    if url is not None:
        monkeypatch.setenv("BROADCASTER_DATABASE__URL", url)
        upgrade(url)
    ctx = AppContext.load(workdir / "broadcaster.toml", clock=clock)
    if url is not None:
        with ctx.sessions.begin() as session:
            add_user(session, actor=ADMIN_LOGIN, login=ADMIN_LOGIN, role=Role.ADMIN, clock=clock)
    monkeypatch.setattr(
        "broadcaster.cli.common.load_context",
        lambda: AppContext.load(workdir / "broadcaster.toml", clock=clock),
    )
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    yield ctx
    ctx.close()


def message(name: str, *, status: MessageStatus, channel: str = "sms", **values: Any) -> Message:
    address = PHONE if channel == "sms" else EMAIL
    defaults: dict[str, Any] = {
        "idempotency_key": f"run:7:{channel}:{address.lower()}:{name}",
        "kind": MessageKind.CAMPAIGN,
        "channel": channel,
        "provider": "sms_main" if channel == "sms" else "mail",
        "address": address,
        "address_key": address.lower(),
        "purpose": "public_information",
        "status": status,
        "subject": None if channel == "sms" else f"Thông báo gửi {NAME}",
        "body": f"Kính gửi {NAME}: hồ sơ {name} đã được tiếp nhận.",
        "context": {"contact": {"full_name": NAME}},
        "created_at": START,
        "reason": f"{name} {PHONE}",
    }
    return Message(**(defaults | values))


def seed(context: AppContext) -> dict[str, int]:
    """Messages of every kind of age and status, inbound data and a contact import, all at START (then the
    clock jumps past the period), and audit entries written before retention."""
    minute = timedelta(minutes=1)
    rows = {
        "sms_delivered": message(
            "sms_delivered",
            status=MessageStatus.DELIVERED,
            sent_at=START + minute,
            final_at=START + 2 * minute,
        ),
        "email_sent": message(
            "email_sent", status=MessageStatus.SENT, channel="email", sent_at=START + minute
        ),
        "suppressed": message("suppressed", status=MessageStatus.SUPPRESSED, final_at=START),
        "cancelled": message("cancelled", status=MessageStatus.CANCELLED),  # never sent: no final_at
        "email_failed": message(
            "email_failed", status=MessageStatus.PERMANENT_FAILURE, channel="email", final_at=START + minute
        ),
        # Old but not settled: never touched.
        "queued": message("queued", status=MessageStatus.QUEUED),
        "sending": message("sending", status=MessageStatus.SENDING, claimed_at=START),
        "unknown_held": message("unknown_held", status=MessageStatus.UNKNOWN, hold=True, handed_at=START),
        # Created long ago, settled after the cutoff: kept until its own settling is old enough.
        "settled_late": message(
            "settled_late", status=MessageStatus.DELIVERED, sent_at=START, final_at=START + 20 * DAY
        ),
    }
    with context.sessions.begin() as session:
        session.add_all(rows.values())
        session.add_all(
            [
                InboundRecord(
                    provider="sms_main",
                    channel="sms",
                    received_at=START,
                    payload={"source_addr": "84905123456", "short_message": f"Cho hỏi {NAME}"},
                    processed_at=START,
                    outcome="inbox reply 1",
                ),
                InboundRecord(
                    provider="sms_main",
                    channel="sms",
                    received_at=START,
                    payload={"source_addr": "84905123457"},
                ),
                InboxReply(
                    inbound_id=1,
                    provider="sms_main",
                    from_number=PHONE,
                    text=f"Cho hỏi {NAME}",
                    received_at=START,
                ),
                ContactImport(
                    filename="danh-ba.csv",
                    sha256="0" * 64,
                    imported_by=ADMIN_LOGIN,
                    imported_at=START,
                    rows_total=3,
                    created=2,
                    updated=0,
                    skipped=1,
                    report={
                        "total_rows": 3,
                        "problems": [
                            {
                                "row": 2,
                                "column": "phone",
                                "value": "0905 123 456",
                                "reason": f"đổi thành {PHONE}",
                                "severity": "warning",
                            },
                            {
                                "row": 3,
                                "column": "email",
                                "value": "",
                                "reason": "trống",
                                "severity": "error",
                            },
                        ],
                    },
                ),
            ]
        )
        for n in range(3):
            audit.record(
                session, actor=ADMIN_LOGIN, action="campaign.loaded", subject_type="campaign",
                subject_id=f"c{n}", at=START,
            )  # fmt: skip
    context.clock.advance(AGE)  # type: ignore[attr-defined]
    with context.sessions.begin() as session:  # recent: inside the period
        session.add(message("recent", status=MessageStatus.DELIVERED, created_at=context.clock.now() - 5 * DAY,
                            sent_at=context.clock.now() - 5 * DAY, final_at=context.clock.now() - 5 * DAY))  # fmt: skip
        session.add(InboxReply(inbound_id=2, provider="sms_main", from_number=PHONE, text="mới",
                               received_at=context.clock.now() - DAY))  # fmt: skip
    with context.sessions() as session:
        return {
            name: session.scalar(select(Message.id).where(Message.idempotency_key.endswith(f":{name}"))) or 0
            for name in [*rows, "recent"]
        }


def snapshot(session: Session, message_id: int) -> dict[str, Any]:
    row = session.get(Message, message_id)
    assert row is not None
    return {c.key: getattr(row, c.key) for c in Message.__table__.columns}


def test_only_settled_old_messages_lose_address_and_content_and_keep_their_hashes(
    db_context: AppContext,
) -> None:
    with db_context.sessions() as session:
        before_seed = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    ids = seed(db_context)
    with db_context.sessions() as session:
        before = {name: snapshot(session, ids[name]) for name in ids}
    with db_context.sessions.begin() as session:
        report = apply_retention(session, settings=db_context.settings, clock=db_context.clock)
    assert report.counts == {
        "messages": len(REDACTED),
        "inbound_records": 1,
        "inbox_replies": 1,
        "contact_import_problems": 1,
    }
    assert report.cutoff == db_context.clock.now() - timedelta(days=730)
    key = db_context.settings.security.erasure_key()
    assert key
    now = db_context.clock.now()
    with db_context.sessions() as session:
        for name, old in before.items():
            new = snapshot(session, ids[name])
            if name not in REDACTED:
                assert new == old, name
                continue
            assert new["address_hash"] == address_hash(key, old["channel"], old["address_key"]), name
            assert new["content_hash"] == content_hash(old["subject"], old["body"]), name
            assert (new["address"], new["address_key"], new["subject"], new["body"], new["context"]) == (
                "", None, None, "", {}
            ), name  # fmt: skip
            assert new["redacted_at"] == now
            assert PHONE not in new["reason"], name
            assert PHONE.lower() not in new["idempotency_key"], name
            # The proof stays: status, times, provider data.
            for column in (
                "id",
                "status",
                "created_at",
                "sent_at",
                "final_at",
                "channel",
                "purpose",
                "run_id",
            ):
                assert new[column] == old[column], (name, column)
        email = snapshot(session, ids["email_sent"])
        assert email["address_hash"] == address_hash(key, "email", EMAIL.lower())
        inbound = list(session.scalars(select(InboundRecord).order_by(InboundRecord.id)))
        assert inbound[0].payload == {"redacted": "retention"}
        assert inbound[0].outcome == "inbox reply 1"
        assert inbound[1].payload == {"source_addr": "84905123457"}  # unprocessed: still work to do
        replies = list(session.scalars(select(InboxReply).order_by(InboxReply.id)))
        assert (replies[0].from_number, replies[0].text) == ("", "")
        assert (replies[1].from_number, replies[1].text) == (PHONE, "mới")
        problems = session.scalars(select(ContactImport)).one().report["problems"]
        assert [p["value"] for p in problems] == ["", ""]
        assert PHONE not in problems[0]["reason"]
        assert problems[0]["row"] == 2
        assert problems[0]["severity"] == "warning"
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        assert len(entries) == before_seed + 3 + 1  # one entry for the whole run, not one per row
        assert entries[-1].action == "retention.run"
        assert entries[-1].actor == "retention"
        assert entries[-1].details["counts"] == report.counts
        assert entries[-1].details["cutoff"] == report.cutoff.isoformat()
        verdict = verify_chain(session)
        assert verdict.ok, verdict.broken
        assert verdict.entries == len(entries)


def test_small_windows_reach_every_due_message(
    db_context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("broadcaster.retention.BATCH", 2)  # pending rows sit between the due ones
    ids = seed(db_context)
    with db_context.sessions.begin() as session:
        report = apply_retention(session, settings=db_context.settings, clock=db_context.clock)
    assert report.counts["messages"] == len(REDACTED)
    with db_context.sessions() as session:
        done = set(session.scalars(select(Message.id).where(Message.redacted_at.is_not(None))))
    assert done == {ids[name] for name in REDACTED}


def test_every_status_is_either_settled_or_left_alone() -> None:
    # A new status is settled (blanked after the period) unless it is added to UNSETTLED: decide here.
    settled = set(MessageStatus) - set(UNSETTLED)
    assert settled == {
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.TEMPORARY_FAILURE,
        MessageStatus.PERMANENT_FAILURE,
        MessageStatus.TECHNICAL_FAILURE,
        MessageStatus.SUPPRESSED,
        MessageStatus.CANCELLED,
    }


def test_a_second_run_and_a_dry_run_change_nothing(db_context: AppContext) -> None:
    seed(db_context)
    before = database_dump(db_context.engine)
    with db_context.sessions.begin() as session:
        dry = apply_retention(session, settings=db_context.settings, clock=db_context.clock, dry_run=True)
    assert database_dump(db_context.engine) == before
    assert dry.dry_run
    assert dry.counts["messages"] == len(REDACTED)
    with db_context.sessions.begin() as session:
        done = apply_retention(session, settings=db_context.settings, clock=db_context.clock)
    assert done.counts == dry.counts
    after = database_dump(db_context.engine)
    assert after != before
    with db_context.sessions.begin() as session:
        again = apply_retention(session, settings=db_context.settings, clock=db_context.clock)
    assert again.total == 0
    assert database_dump(db_context.engine) == after


def cli(*args: str, user: str = ADMIN_LOGIN, expect: int = 0, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("getpass.getuser", lambda: user)
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == expect, (args, result.stdout, result.stderr, result.exception)
    return " ".join((result.stdout if expect == 0 else result.stderr).split())


def report_csv(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``broadcaster report`` of 2025-H2, the half-year of START (closed and frozen at its first report)."""
    cli("report", "--period", "2025-H2", "--format", "csv", "--out", str(path), monkeypatch=monkeypatch)


def test_the_cli_runs_it_for_admins_only_and_a_frozen_report_keeps_its_figures(
    db_context: AppContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seed(db_context)
    with db_context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login="kiem_toan", role=Role.AUDITOR, clock=db_context.clock)
    before = database_dump(db_context.engine)
    refused = cli("retention", "run", "--dry-run", user="kiem_toan", expect=1, monkeypatch=monkeypatch)
    assert "retention.run" in refused
    assert "admin" in refused
    dry = cli("retention", "run", "--dry-run", monkeypatch=monkeypatch)
    assert "Would remove personal data from before" in dry
    assert "Dry run: nothing changed." in dry
    assert database_dump(db_context.engine) == before
    # The report of the half-year the messages were sent in, written (and frozen) before retention.
    report_csv(tmp_path / "a.csv", monkeypatch)
    rollups = {name: database_dump(db_context.engine)[name] for name in ROLLUP_TABLES}
    assert rollups["rollup_frozen_days"]
    assert rollups["rollup_days"]
    done = cli("retention", "run", "--json", monkeypatch=monkeypatch)
    assert '"messages": 5' in done
    assert '"dry_run": false' in done
    report_csv(tmp_path / "b.csv", monkeypatch)
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    assert {name: database_dump(db_context.engine)[name] for name in ROLLUP_TABLES} == rollups
    with db_context.sessions() as session:
        assert session.scalar(select(func.count()).where(Message.redacted_at.is_not(None))) == len(REDACTED)
    nothing = cli("retention", "run", monkeypatch=monkeypatch)
    assert "Removed personal data from before" in nothing
    assert "No data is past its retention period." in nothing


def test_retention_freezes_the_days_it_blanks_when_no_report_did(db_context: AppContext) -> None:
    seed(db_context)
    with db_context.sessions.begin() as session:
        report = apply_retention(session, settings=db_context.settings, clock=db_context.clock)
    assert report.frozen_days > 0
    with db_context.sessions() as session:
        frozen = set(session.scalars(select(RollupFrozenDay.day)))
        assert START.date() in frozen
        people = session.scalar(select(func.count()).select_from(RollupReach))
        assert people  # counted from the addresses, before they went


def test_a_too_short_period_in_the_settings_file_stops_every_command(
    db_context: AppContext, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = workdir / "broadcaster.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + "\n[retention]\npersonal_data_days = 90\n", encoding="utf-8"
    )
    message = cli("retention", "run", "--dry-run", expect=1, monkeypatch=monkeypatch)
    assert "retention.personal_data_days" in message
    assert "90" in message


def test_the_tick_runs_retention_once_a_day(db_context: AppContext) -> None:
    ids = seed(db_context)
    sessions, settings, clock = db_context.sessions, db_context.settings, db_context.clock

    def tick() -> int:
        return engine_tick(sessions, settings=settings, clock=clock, enqueuer=RecordingEnqueuer()).retained

    def redacted(name: str) -> bool:
        with sessions() as session:
            return session.scalar(select(Message.redacted_at).where(Message.id == ids[name])) is not None

    # The tick's own pass closes the old unprocessed inbound record first (nothing matches it): blanked too.
    assert tick() == len(REDACTED) + 4
    assert redacted("sms_delivered")
    assert not redacted("settled_late")
    clock.advance(timedelta(days=10, hours=12))  # type: ignore[attr-defined]
    # Ten days on: settled_late is past the cutoff now.
    assert tick() == 1
    assert redacted("settled_late")
    with sessions.begin() as session:
        session.add(message("late", status=MessageStatus.DELIVERED, created_at=START, final_at=START))
    clock.advance(timedelta(hours=23))  # type: ignore[attr-defined]
    assert tick() == 0  # within the day: not run again
    with sessions() as session:
        late = session.scalar(select(Message).where(Message.idempotency_key.endswith(":late")))
        assert late is not None
        assert late.redacted_at is None
        entries = session.scalar(select(func.count()).where(AuditEntry.action == "retention.run"))
        assert entries == 2
    clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    assert tick() == 1
    with sessions() as session:
        lease = session.get(Lease, DAILY_LEASE)
        assert lease is not None
        assert lease.expires_at == clock.now() + DAY


def test_run_once_runs_the_days_retention(
    db_context: AppContext, workdir: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db_context)
    monkeypatch.setattr(
        "broadcaster.cli.engine_processes.load_context",
        lambda: AppContext.load(workdir / "broadcaster.toml", clock=clock),
    )
    out = cli("run", "--once", monkeypatch=monkeypatch)
    # The messages, the inbound record the tick closed just before, the reply and the import's problem value.
    assert f"{len(REDACTED) + 4} row(s) of personal data past retention.personal_data_days blanked" in out
    assert "nothing to do" in cli("run", "--once", monkeypatch=monkeypatch)  # once a day


def test_a_backlog_goes_on_at_the_next_ticks_until_the_day_is_done(
    db_context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("broadcaster.retention.BATCH", 2)
    monkeypatch.setattr("broadcaster.retention.TICK_LIMIT", 2)
    seed(db_context)
    sessions, settings, clock = db_context.sessions, db_context.settings, db_context.clock
    runs = []
    while (report := run_daily(sessions, settings=settings, clock=clock)) is not None:
        runs.append((report.counts["messages"], report.complete))
        assert len(runs) < 10
    # Windows of ids 1-2, 3-4 (each a short run that lets the lease lapse), then the rest and the day's lease.
    assert runs == [(2, False), (2, False), (1, True)]
    with sessions() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.run")))
        assert [entry.details["counts"]["messages"] for entry in entries] == [2, 2, 1]
        assert session.scalar(select(func.count()).where(Message.redacted_at.is_not(None))) == len(REDACTED)
    assert run_daily(sessions, settings=settings, clock=clock) is None


def test_a_subject_export_still_lists_the_messages_whose_address_retention_removed(
    db_context: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(db_context)
    with db_context.sessions.begin() as session:
        apply_retention(session, settings=db_context.settings, clock=db_context.clock)
    with db_context.readers() as session:
        redacted = set(
            session.scalars(
                select(Message.id).where(Message.channel == "sms", Message.redacted_at.is_not(None))
            )
        )
    assert redacted

    document = json.loads(cli("subject", "export", "0905 123 456", monkeypatch=monkeypatch))

    listed = {m["id"] for m in document["messages"]}
    assert redacted <= listed  # found by the keyed hash: nothing else of them names the person
