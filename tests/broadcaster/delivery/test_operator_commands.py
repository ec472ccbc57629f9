"""``broadcaster messages release|retry|drop`` against the real pipeline and peers.

A held ``unknown`` released goes out again (a duplicate is the accepted cost); a technical failure retried is a
fresh attempt that is sent; an expired SMS retried gets new parts whose receipts are matched; dropped messages
are never sent. Each change is audited with its count; a dry run counts and changes nothing; the transition
table in ``broadcaster.outbox.status`` is the guard, so messages in any other status are left alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from broadcaster.cli import app
from broadcaster.db.models import AuditEntry, Message, MessagePart
from broadcaster.outbox.operator import MOVES
from broadcaster.outbox.status import can_transition
from broadcaster.users import add_user
from broadcaster.vocabulary import MessageStatus, Role
from channels.sandbox.smtp import SmtpBehaviour
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens

S = MessageStatus


class Cli:
    """The ``broadcaster`` command in the pipeline's working directory, as an OS login."""

    def __init__(self, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(pipeline.directory)
        monkeypatch.setenv("COLUMNS", "200")
        self.monkeypatch = monkeypatch

    def __call__(self, *args: str, user: str = EDITOR, expect: int = 0) -> str:
        self.monkeypatch.setattr("getpass.getuser", lambda: user)
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == expect, (args, result.stdout, result.stderr, result.exception)
        return " ".join((result.stdout if expect == 0 else result.stderr).split())

    def json(self, *args: str, user: str = EDITOR) -> Any:
        self.monkeypatch.setattr("getpass.getuser", lambda: user)
        result = CliRunner().invoke(app, [*args, "--json"])
        assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
        return json.loads(result.stdout)


@pytest.fixture
def cli_for(monkeypatch: pytest.MonkeyPatch) -> Any:
    return lambda pipeline: Cli(pipeline, monkeypatch)


def email_campaign(pipeline: Pipeline, **overrides: object) -> str:
    return pipeline.approved_campaign(
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}}, **overrides
    )


def send_round(pipeline: Pipeline, *, seconds: float) -> None:
    pipeline.advance(seconds=seconds)
    pipeline.tick()
    pipeline.drain()


def last_audit(pipeline: Pipeline, action: str | None = None) -> AuditEntry:
    """The newest audit entry (of ``action``): the engine may log after the operator, e.g. a completed run;
    the sends and outcomes it records on its own (``delivery.*``) are left out."""
    query = select(AuditEntry).where(AuditEntry.action.not_like("delivery.%")).order_by(AuditEntry.id.desc())
    if action is not None:
        query = query.where(AuditEntry.action == action)
    with pipeline.context.readers() as session:
        entry = session.scalars(query).first()
    assert entry is not None
    return entry


def test_every_operation_moves_only_along_the_transition_table() -> None:
    for move in MOVES.values():
        assert all(can_transition(source, move.target) for source in move.sources)


def test_release_sends_held_messages_again_after_a_dry_run(
    make_pipeline: PipelineFactory, cli_for: Any
) -> None:
    # The relay keeps every 2nd mail but hangs up instead of answering the final dot: those are held.
    pipeline = make_pipeline(smtp=SmtpBehaviour(drop_after_data_every=2), mail={"connections": 1})
    pipeline.add_contacts(citizens(6))
    campaign_id = email_campaign(pipeline, on_uncertain="hold")
    run_id = pipeline.send(campaign_id)
    pipeline.smtp.behaviour = SmtpBehaviour()
    held = [m for m in pipeline.messages(run_id) if m.status == S.UNKNOWN]
    assert held
    assert all(m.hold for m in held)
    cli = cli_for(pipeline)

    dry = cli.json("messages", "release", "--campaign", campaign_id, "--dry-run")
    assert (dry["matched"], dry["changed"]) == (len(held), 0)
    assert dry["counts"] == [{"status": "unknown", "channel": "email", "messages": len(held)}]
    assert "needs a reason (--reason)" in cli("messages", "release", "--campaign", campaign_id, expect=1)
    assert pipeline.counts(run_id)[("email", "unknown")] == len(held)  # nothing changed yet

    done = cli("messages", "release", "--campaign", campaign_id, "--reason", "nhà mạng xác nhận chưa nhận")
    assert f"Release: {len(held)} message(s) changed" in done
    send_round(pipeline, seconds=1)

    assert pipeline.counts(run_id) == {("email", "sent"): 6}
    received = [r for mail in pipeline.smtp.received for r in mail.rcpt_tos]
    assert all(received.count(m.address) == 2 for m in held)  # the duplicate the help warns about
    entry = last_audit(pipeline)
    assert (entry.actor, entry.action, entry.subject_id, entry.reason) == (
        EDITOR,
        "messages.release",
        campaign_id,
        "nhà mạng xác nhận chưa nhận",
    )
    assert entry.details == {
        "filters": {"campaign": campaign_id},
        "count": len(held),
        "by_status": {"unknown": len(held)},
        "to": "queued",
        "message_ids": sorted(m.id for m in held),
    }


def test_retry_queues_technical_failures_as_a_fresh_attempt(
    make_pipeline: PipelineFactory, cli_for: Any
) -> None:
    # retry_backoff = [30, 120]: three 451s and the engine gives up.
    pipeline = make_pipeline(smtp=SmtpBehaviour(temporary_every=1))
    pipeline.add_contacts(citizens(4))
    run_id = pipeline.send(email_campaign(pipeline))
    send_round(pipeline, seconds=30)
    send_round(pipeline, seconds=120)
    assert pipeline.counts(run_id) == {("email", "technical_failure"): 4}
    pipeline.smtp.behaviour = SmtpBehaviour()  # the relay is mended
    cli = cli_for(pipeline)

    report = cli.json(
        "messages", "retry", "--run", str(run_id), "--status", "technical_failure", "-m", "relay đã sửa"
    )
    assert (report["matched"], report["changed"]) == (4, 4)
    rows = pipeline.messages(run_id)
    assert {(m.status, m.attempts, m.not_before, m.chunk_id) for m in rows} == {(S.QUEUED, 0, None, None)}
    assert all(m.reason == f"retried by {EDITOR}: relay đã sửa" for m in rows)
    send_round(pipeline, seconds=1)

    assert pipeline.counts(run_id) == {("email", "sent"): 4}
    assert all(m.attempts == 1 for m in pipeline.messages(run_id))
    # Sent messages are not failures: a second retry finds nothing and records nothing.
    audits = last_audit(pipeline).id
    assert "0 message(s) changed" in cli("messages", "retry", "--run", str(run_id), "-m", "lần nữa")
    assert last_audit(pipeline).id == audits
    assert "retry applies to technical_failure, temporary_failure messages, not sent" in cli(
        "messages", "retry", "--run", str(run_id), "--status", "sent", "-m", "x", expect=1
    )


def test_retry_of_an_expired_sms_records_the_new_parts_and_their_receipts(
    make_pipeline: PipelineFactory, cli_for: Any
) -> None:
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(3))
    campaign_id = pipeline.approved_campaign(
        channels={"sms": {"template": "sms/thu-nghiem", "provider": "sms_main", "unaccented": True}}
    )
    run_id = pipeline.send(campaign_id)
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 3})
    with pipeline.context.sessions.begin() as session:  # as an SMSC's EXPIRED receipts would leave them
        session.execute(update(Message).where(Message.run_id == run_id).values(status=S.TEMPORARY_FAILURE))
        session.execute(update(MessagePart).values(state="expired"))
        old_ids = set(session.scalars(select(MessagePart.provider_id)))

    cli_for(pipeline)("messages", "retry", "--campaign", campaign_id, "--channel", "sms", "-m", "hết hạn")
    send_round(pipeline, seconds=1)

    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 3})
    with pipeline.context.readers() as session:
        parts = list(session.scalars(select(MessagePart)))
    assert {p.state for p in parts} == {"delivered"}
    assert len(parts) == 3
    assert not old_ids & {p.provider_id for p in parts}  # the new attempt's ids, not the old ones
    assert len(pipeline.smsc.reassembled()) == 6


def test_drop_cancels_queued_and_held_messages_with_the_reason(
    make_pipeline: PipelineFactory, cli_for: Any
) -> None:
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(5))
    run_id = pipeline.start_run(email_campaign(pipeline))
    pipeline.plan(run_id)  # queued in a chunk whose task has not run yet
    first, *others = pipeline.messages(run_id)
    with pipeline.context.sessions.begin() as session:
        session.execute(update(Message).where(Message.id == first.id).values(status=S.UNKNOWN, hold=True))
    cli = cli_for(pipeline)

    dry = cli.json("messages", "drop", "--run", str(run_id), "--dry-run")
    assert {(c["status"], c["messages"]) for c in dry["counts"]} == {("queued", 4), ("unknown", 1)}
    assert "Drop: 5 message(s) changed" in cli("messages", "drop", "--run", str(run_id), "-m", "sai nội dung")
    pipeline.drain()

    rows = pipeline.messages(run_id)
    assert {m.status for m in rows} == {S.CANCELLED}
    assert all(m.reason == f"dropped by {EDITOR}: sai nội dung" and not m.hold for m in rows)
    assert pipeline.smtp.received == []
    assert last_audit(pipeline, "messages.drop").details["count"] == 5
    # Nothing is left that drop may touch; release finds nothing either.
    assert "0 message(s) changed" in cli("messages", "release", "--id", str(first.id), "-m", "x")
    assert others  # (five contacts, one planned row each)


def test_messages_still_lists_and_masks_addresses_for_auditors(
    make_pipeline: PipelineFactory, cli_for: Any
) -> None:
    pipeline = make_pipeline(smtp=SmtpBehaviour(reject_recipients=["cong.dan2@example.vn"]))
    pipeline.add_contacts(citizens(3))
    campaign_id = email_campaign(pipeline)
    pipeline.send(campaign_id)
    with pipeline.context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login="kiem_toan", role=Role.AUDITOR, clock=pipeline.clock)
    cli = cli_for(pipeline)
    stored = {m.id: m for m in pipeline.messages()}

    failed = cli.json(
        "messages", "--campaign", campaign_id, "--status", "permanent_failure", user="kiem_toan"
    )
    assert [row["id"] for row in failed] == [m.id for m in stored.values() if m.status == S.PERMANENT_FAILURE]
    assert failed[0]["address"] == "c***@example.vn"
    assert "cong.dan2" not in failed[0]["reason"]
    assert "c***@example.vn" in failed[0]["reason"]
    table = cli("messages", "--campaign", campaign_id, user="kiem_toan")
    assert "c***@example.vn" in table
    assert "cong.dan" not in table
    # The editor who runs the campaign sees the addresses as stored; an admin asks, and it is audited.
    assert {row["address"] for row in cli.json("messages")} == {m.address for m in stored.values()}
    assert {row["address"] for row in cli.json("messages", "--unmasked", user=ADMIN_LOGIN)} == {
        m.address for m in stored.values()
    }
    entry = last_audit(pipeline)
    assert (entry.actor, entry.action, entry.subject_type, entry.details["shown"]) == (
        ADMIN_LOGIN,
        "personal_data.unmasked",
        "messages",
        3,
    )
    # Filters before the subcommand would not apply to it: refused rather than ignored.
    refused = cli("messages", "--campaign", campaign_id, "drop", "-m", "x", expect=1)
    assert "put the options after the subcommand: broadcaster messages drop" in refused
    assert "say which messages to drop" in cli("messages", "drop", "-m", "x", expect=1)
    assert {m.status for m in pipeline.messages()} == {m.status for m in stored.values()}
