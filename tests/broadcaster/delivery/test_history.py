"""The event history (``broadcaster.history``) against the real pipeline and peers: each filter, masking by
default, the failed attempts the recorder stores as events (and none for an accepted one), and the
``messages --format csv|jsonl --out`` exports, with bad input refused before anything is written."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from typer.testing import CliRunner

from broadcaster.campaigns.schema import OnUncertain
from broadcaster.cli import app
from broadcaster.db.models import AuditEntry, Message
from broadcaster.history.export import CSV_COLUMNS
from broadcaster.history.filters import HistoryFilter, PeriodOn, recipient
from broadcaster.history.query import ACCEPTED, HistoryRow, iter_history
from broadcaster.outbox.results import Claimed, apply_results
from broadcaster.users import add_user
from broadcaster.vocabulary import ATTEMPT_FAILED, MessageStatus, Role
from channels.base import SendResult
from channels.errors import RecipientRejected
from channels.sandbox.smtp import SmtpBehaviour
from tests.broadcaster.conftest import ADMIN_LOGIN, START
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_operator_commands import Cli
from tests.broadcaster.delivery.workdir_files import citizens

S = MessageStatus
PEOPLE = citizens(6)
REFUSED = PEOPLE[1]["email"]  # cong.dan2@example.vn: 550 5.1.1 at RCPT, then suppressed


@pytest.fixture
def seeded(make_pipeline: PipelineFactory) -> tuple[Pipeline, int, int]:
    """Run 1 (SMS + e-mail, one address refused) at START; run 2 (e-mail only, another campaign) a day later."""
    pipeline = make_pipeline(smtp=SmtpBehaviour(reject_recipients=[REFUSED]))
    pipeline.add_contacts(PEOPLE)
    first = pipeline.send(pipeline.approved_campaign())
    pipeline.advance(days=1)
    second = pipeline.send(
        pipeline.approved_campaign(
            id="chien-dich-b", channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}}
        )
    )
    with pipeline.context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login="kiem_toan", role=Role.AUDITOR, clock=pipeline.clock)
    return pipeline, first, second


def history(pipeline: Pipeline, filters: HistoryFilter, **options: Any) -> list[HistoryRow]:
    with pipeline.context.readers() as session:
        return list(iter_history(session, filters, **options))


def ids(rows: list[HistoryRow]) -> list[int]:
    return [r.id for r in rows]


def test_each_filter_selects_exactly_its_messages(seeded: tuple[Pipeline, int, int]) -> None:
    pipeline, first, second = seeded
    stored = pipeline.messages()
    assert len(stored) == 6 + 6 + 6  # run 1: 6 SMS + 6 e-mails; run 2: 6 e-mails

    def expect(keep: Any) -> list[int]:
        return [m.id for m in stored if keep(m)]

    assert ids(history(pipeline, HistoryFilter())) == expect(lambda m: True)
    assert ids(history(pipeline, HistoryFilter(campaign="chien-dich-b"))) == expect(
        lambda m: m.run_id == second
    )
    assert ids(history(pipeline, HistoryFilter(run=first))) == expect(lambda m: m.run_id == first)
    assert ids(history(pipeline, HistoryFilter(channel="sms"))) == expect(lambda m: m.channel == "sms")
    # A phone number in any spelling finds the stored E.164; an e-mail in any case finds every spelling.
    phone = history(pipeline, HistoryFilter(recipient=recipient("0912 000 003")))
    assert ids(phone) == expect(lambda m: m.address == "+84912000003")
    mail = history(pipeline, HistoryFilter(recipient=recipient("CONG.DAN3@Example.VN")))
    assert ids(mail) == expect(lambda m: m.address == "cong.dan3@example.vn")
    assert len(mail) == 2
    failed = history(pipeline, HistoryFilter(statuses=(S.PERMANENT_FAILURE, S.SUPPRESSED)))
    assert ids(failed) == expect(lambda m: m.address == REFUSED)
    assert [r.status for r in failed] == ["permanent_failure", "suppressed"]
    # Periods: [from, to) on the moment asked for.
    later = START + timedelta(hours=12)
    assert ids(history(pipeline, HistoryFilter(period_from=later))) == expect(lambda m: m.run_id == second)
    sent_early = HistoryFilter(period_to=later, period_on=PeriodOn.SENT)
    assert ids(history(pipeline, sent_early)) == expect(lambda m: m.sent_at is not None and m.run_id == first)
    assert len(ids(history(pipeline, sent_early))) == 11
    settled_later = HistoryFilter(period_from=later, period_on=PeriodOn.FINAL)
    expected_final = expect(lambda m: m.final_at is not None and m.final_at >= later)
    assert expected_final  # run 2's suppressed message at least
    assert ids(history(pipeline, settled_later)) == expected_final
    # Filters combine; newest first and a limit page the listing.
    both = HistoryFilter(run=first, channel="email", statuses=(S.SENT,))
    assert (
        ids(history(pipeline, both, newest_first=True, limit=3))
        == list(
            reversed(expect(lambda m: m.run_id == first and m.channel == "email" and m.status == S.SENT))
        )[:3]
    )


def test_addresses_and_provider_texts_are_masked_unless_asked(seeded: tuple[Pipeline, int, int]) -> None:
    pipeline, first, _second = seeded
    only = HistoryFilter(run=first, statuses=(S.PERMANENT_FAILURE,))
    (masked,) = history(pipeline, only)
    assert masked.address == "c***@example.vn"
    assert "cong.dan2" not in (masked.reason or "")
    (attempt,) = [e for e in masked.events if e.type == ATTEMPT_FAILED]
    assert "cong.dan2" not in (attempt.text or "")
    (plain,) = history(pipeline, only, mask=False)
    assert plain.address == REFUSED
    assert REFUSED in (plain.reason or "")


def test_a_refused_attempt_is_an_event_with_code_and_text_and_an_accepted_one_is_derived(
    seeded: tuple[Pipeline, int, int],
) -> None:
    pipeline, first, _second = seeded
    rows = {r.address: r for r in history(pipeline, HistoryFilter(run=first, channel="email"), mask=False)}
    refused = rows[REFUSED]
    stored = next(m for m in pipeline.messages(first) if m.address == REFUSED)
    assert [(e.type, e.code, e.provider) for e in refused.events] == [
        (ATTEMPT_FAILED, stored.error_code, "mail")
    ]
    assert "5.1.1" in (refused.events[0].text or "")
    assert refused.events[0].at == START
    accepted = rows["cong.dan1@example.vn"]
    assert [(e.type, e.at) for e in accepted.events] == [(ACCEPTED, START)]
    assert (accepted.events[0].text or "").startswith("<")  # the Message-ID we made
    # The happy path wrote no event row: only the one refusal is stored.
    assert pipeline.event_count(type=ATTEMPT_FAILED) == 1


def test_a_retried_attempt_shows_the_failure_then_the_acceptance(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(smtp=SmtpBehaviour(temporary_every=1))
    pipeline.add_contacts(citizens(3))
    run_id = pipeline.send(
        pipeline.approved_campaign(channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}})
    )
    pipeline.smtp.behaviour = SmtpBehaviour()
    pipeline.advance(seconds=30)
    pipeline.tick()
    pipeline.drain()
    rows = history(pipeline, HistoryFilter(run=run_id))
    assert {r.status for r in rows} == {"sent"}
    for row in rows:
        assert [(e.type, e.at) for e in row.events] == [
            (ATTEMPT_FAILED, START),
            (ACCEPTED, START + timedelta(seconds=30)),
        ]
        assert "451" in (row.events[0].code or "") + (row.events[0].text or "")
        assert "4.3.0" in (row.events[0].text or "")
    assert pipeline.event_count(type=ATTEMPT_FAILED) == 3


def test_history_pages_keep_the_identity_map_empty(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(25))
    run_id = pipeline.send(
        pipeline.approved_campaign(channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}})
    )
    seen = 0
    with pipeline.context.readers() as session:
        for row in iter_history(session, HistoryFilter(run=run_id), page_size=4):
            assert len(session.identity_map) == 0  # column tuples, never ORM objects
            seen += 1
            assert row.events
    assert seen == 25


# -- the command -----------------------------------------------------------------------------------------------


def audit_count(pipeline: Pipeline) -> int:
    with pipeline.context.readers() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_messages_exports_csv_and_jsonl_masked_for_auditors_and_audited_unmasked(
    seeded: tuple[Pipeline, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, first, _second = seeded
    cli = Cli(pipeline, monkeypatch)
    stored = pipeline.messages()

    said = cli("messages", "--format", "csv", "--out", "tin-nhan.csv", user="kiem_toan")
    assert "Exported 18 message(s) to tin-nhan.csv (csv)." in said
    with (pipeline.directory / "tin-nhan.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        table = list(reader)
    assert [int(r["id"]) for r in table] == [m.id for m in stored]
    assert not any("cong.dan" in r["address"] or "+849120" in r["address"] for r in table)
    refused = next(r for r in table if r["status"] == "permanent_failure")
    assert refused["address"] == "c***@example.vn"
    assert "attempt_failed [550 5.1.1]" in refused["events"]
    assert "cong.dan2" not in refused["events"]

    before = audit_count(pipeline)
    cli(
        "messages",
        "--run",
        str(first),
        "--format",
        "jsonl",
        "--out",
        "tin-nhan.jsonl",
        "--unmasked",
        user=ADMIN_LOGIN,
    )
    lines = (pipeline.directory / "tin-nhan.jsonl").read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    assert [o["id"] for o in objects] == [m.id for m in stored if m.run_id == first]
    assert {o["address"] for o in objects} == {m.address for m in stored if m.run_id == first}
    assert all(o["events"] and o["events"][0]["type"] in (ACCEPTED, ATTEMPT_FAILED) for o in objects)
    assert objects[0]["created_at"] == "2025-06-02T08:00:00+07:00"
    assert audit_count(pipeline) == before + 1
    with pipeline.context.readers() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert (entry.action, entry.details["shown"], entry.details["filters"]["format"]) == (
        "personal_data.unmasked",
        12,
        "jsonl",
    )

    # Dates are Da Nang days: --to a date includes that whole day, --from starts at its midnight.
    first_day = cli.json("messages", "--to", "2025-06-02", "--limit", "100")
    assert sorted(r["id"] for r in first_day) == [m.id for m in stored if m.run_id == first]
    next_day = cli.json("messages", "--from", "2025-06-03", "--to", "2025-06-03")
    assert sorted(r["id"] for r in next_day) == [m.id for m in stored if m.run_id != first]
    assert cli.json("messages", "--from", "2025-06-03T08:00:01", "--limit", "100") == []

    # The listing: filters by recipient and status, events counted.
    rows = cli.json("messages", "--recipient", "0912000003", "--status", "sent", "--status", "delivered")
    assert [r["address"] for r in rows] == ["+84912000003"]
    assert rows[0]["events"][0]["type"] == ACCEPTED


def test_bad_export_options_are_refused_and_write_nothing(
    seeded: tuple[Pipeline, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, _first, _second = seeded
    cli = Cli(pipeline, monkeypatch)
    before = audit_count(pipeline)
    files = sorted(p.name for p in pipeline.directory.iterdir())
    assert "--from '30/11/2026'" in cli(
        "messages", "--from", "30/11/2026", "--format", "csv", "--out", "a.csv", expect=1
    )
    assert "--out thieu/a.csv" in cli("messages", "--format", "csv", "--out", "thieu/a.csv", expect=1)
    assert "--out" in cli("messages", "--out", "a.csv", expect=1)
    assert "--recipient '0912'" in cli("messages", "--recipient", "0912", expect=1)
    assert "--limit 0" in cli("messages", "--limit", "0", expect=1)
    assert "--from 2025-06-03 must be before --to 2025-06-02" in cli(
        "messages", "--from", "2025-06-03", "--to", "2025-06-02", expect=1
    )
    assert sorted(p.name for p in pipeline.directory.iterdir()) == files
    assert audit_count(pipeline) == before
    # An auditor may not ask for the full data.
    cli("messages", "--format", "jsonl", "--unmasked", user="kiem_toan", expect=1)
    assert audit_count(pipeline) == before
    with pipeline.context.readers() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 18


def test_csv_to_stdout_has_the_header_first(
    seeded: tuple[Pipeline, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, first, _second = seeded
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setattr("getpass.getuser", lambda: "kiem_toan")
    result = CliRunner().invoke(app, ["messages", "--run", str(first), "--channel", "sms", "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert len(lines) == 1 + 6


def test_a_window_recorded_twice_stores_its_failed_attempt_once(seeded: tuple[Pipeline, int, int]) -> None:
    """A redelivered task records the same results again: the guarded UPDATE changes nothing, and the
    attempt's event is keyed by message, attempt and error class."""
    pipeline, first, _second = seeded
    stored = next(m for m in pipeline.messages(first) if m.address == REFUSED)
    claimed = Claimed(
        id=stored.id,
        address=stored.address,
        channel="email",
        provider="mail",
        attempts=stored.attempts,
        campaign_id=stored.campaign_id,
        on_uncertain=OnUncertain.HOLD,
    )
    result = SendResult.failed(stored.id, RecipientRejected("the address is rejected", code="550 5.1.1"))
    with pipeline.context.sessions.begin() as session:
        apply_results(
            session,
            claimed={stored.id: claimed},
            results=[result],
            settings=pipeline.context.settings.delivery,
            now=pipeline.clock.now(),
            window_size=1,
        )
    assert pipeline.event_count(type=ATTEMPT_FAILED, message_id=stored.id) == 1


def test_pages_are_read_one_query_each(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(10))
    run_id = pipeline.send(
        pipeline.approved_campaign(channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}})
    )
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = pipeline.context.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with pipeline.context.readers() as session:
            rows = iter_history(session, HistoryFilter(run=run_id), page_size=3)
            first_row = next(rows)
            assert len([s for s in statements if "FROM messages" in s]) == 1  # one page, not the whole run
            rest = list(rows)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len([first_row, *rest]) == 10
    assert len([s for s in statements if "FROM messages" in s]) == 4  # pages of 3, 3, 3 and 1
    assert len([s for s in statements if "FROM delivery_events" in s]) == 4
