"""``campaigns test-send`` against the real sandbox servers: a test send is attempted now or fails now.

With a provider stopped the command prints one line naming the provider, its host:port and what to check,
exits non-zero, and the test message ends ``technical_failure`` with the reason: when the provider is back,
no tick and no later run sends it.
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from broadcaster.db.models import AuditEntry, CampaignVersion, Message
from broadcaster.vocabulary import MessageKind, MessageStatus
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens
from tests.broadcaster.test_cli import Cli, one_line

PHONE = "0912345678"
EMAIL = "Nguyen.Van.An@danang.gov.vn"


@pytest.fixture
def cli(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(monkeypatch)


@pytest.fixture
def campaign(pipeline: Pipeline) -> str:
    """A draft campaign with an SMS and an e-mail channel (test sends come before approval)."""
    pipeline.add_contacts(citizens(3))
    return pipeline.load_campaign(pipeline.write_campaign())


def rows_of(pipeline: Pipeline) -> list[Message]:
    with pipeline.context.readers() as session:
        return list(
            session.scalars(select(Message).where(Message.kind == MessageKind.TEST).order_by(Message.id))
        )


def delivery_entries(pipeline: Pipeline, action: str) -> list[AuditEntry]:
    with pipeline.context.readers() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def assert_never_sent_later(pipeline: Pipeline) -> None:
    """With both providers up, the tick and a drain of what it queues send none of the test messages."""
    pipeline.advance(hours=1)  # past every back-off
    report = pipeline.tick()
    pipeline.drain()
    assert report.chunks == 0
    assert pipeline.smsc.submits == []
    assert pipeline.smtp.received == []


def test_a_test_send_goes_out_at_once(pipeline: Pipeline, campaign: str, cli: Cli) -> None:
    result = cli("campaigns", "test-send", campaign, "--to", PHONE, "--to", EMAIL, user=EDITOR)
    sms, email = rows_of(pipeline)
    assert sms.status in (MessageStatus.SENT, MessageStatus.DELIVERED)  # the receipt may already be in
    assert email.status == MessageStatus.SENT
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 1)
    assert pipeline.smtp.wait_for_count(1)
    assert "sent" in result.stdout
    assert result.stderr == ""
    # Through the same recording as a campaign's windows: one entry per window, without a run.
    windows = delivery_entries(pipeline, "delivery.window")
    assert sorted((m[0], m[1]) for e in windows for m in e.details["messages"]) == [
        (sms.id, "sent"),
        (email.id, "sent"),
    ]
    assert {e.details["run_id"] for e in windows} == {None}


def test_with_the_smsc_down_the_sms_fails_now_and_never_goes_later(
    pipeline: Pipeline, campaign: str, cli: Cli
) -> None:
    pipeline.smsc.stop()
    result = cli("campaigns", "test-send", campaign, "--to", PHONE, "--to", EMAIL, user=EDITOR, expect=1)

    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert f"provider sms_main (SMPP 127.0.0.1:{pipeline.smsc.port})" in line
    assert f"Check that the SMSC at 127.0.0.1:{pipeline.smsc.port} is running" in line
    assert "[providers.sms_main]" in line
    assert "will not be sent later" in line
    # The e-mail went; the table shows it, not the SMS that has its own line.
    assert "email" in result.stdout
    assert "sent" in result.stdout
    assert PHONE not in result.stdout
    sms, email = rows_of(pipeline)
    assert (sms.status, email.status) == (MessageStatus.TECHNICAL_FAILURE, MessageStatus.SENT)
    [failed] = delivery_entries(pipeline, "delivery.results")
    assert failed.details == {"provider": "sms_main", "messages": [[sms.id, "technical_failure", "not_sent"]]}
    assert sms.reason is not None
    assert "test send not completed" in sms.reason
    assert sms.final_at is not None

    pipeline.smsc.start()
    pipeline.smtp.clear()
    assert_never_sent_later(pipeline)
    assert [m.status for m in rows_of(pipeline)] == [MessageStatus.TECHNICAL_FAILURE, MessageStatus.SENT]


def test_with_the_mail_relay_down_the_command_fails_with_one_line(
    pipeline: Pipeline, campaign: str, cli: Cli
) -> None:
    pipeline.smtp.stop()
    result = cli("campaigns", "test-send", campaign, "--to", EMAIL, user=EDITOR, expect=1)

    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""  # no empty table
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"provider mail (SMTP 127.0.0.1:{pipeline.smtp.port})" in lines[0]
    assert f"Check that the mail relay at 127.0.0.1:{pipeline.smtp.port} is running" in lines[0]
    (email,) = rows_of(pipeline)
    assert email.status == MessageStatus.TECHNICAL_FAILURE
    assert email.not_before is None
    assert email.reason is not None
    assert email.reason.startswith("test send not completed: SMTP connection lost")

    pipeline.smtp.start()
    assert_never_sent_later(pipeline)
    assert [m.status for m in rows_of(pipeline)] == [MessageStatus.TECHNICAL_FAILURE]


def test_json_lists_every_test_message_and_still_fails(pipeline: Pipeline, campaign: str, cli: Cli) -> None:
    pipeline.smsc.stop()
    result = cli("campaigns", "test-send", campaign, "--to", PHONE, "--json", user=EDITOR, expect=1)
    (row,) = json.loads(result.stdout)
    assert (row["channel"], row["status"]) == ("sms", "technical_failure")
    assert "sms_main" in one_line(result.stderr)


def test_the_tick_leaves_a_test_message_alone(pipeline: Pipeline, campaign: str) -> None:
    """A test message left queued (its process was killed mid-send) is not the tick's to send."""
    with pipeline.context.sessions.begin() as session:
        version_id = session.scalars(select(CampaignVersion.id).limit(1)).one()
        session.add(
            Message(
                idempotency_key=f"test:{uuid.uuid4().hex}",
                kind=MessageKind.TEST,
                campaign_id=campaign,
                version_id=version_id,
                channel="sms",
                provider="sms_main",
                address="84912345678",
                status=MessageStatus.QUEUED,
                body="[TEST]",
                context={},
                encoding="gsm7",
                segments=1,
                created_at=pipeline.clock.now(),
            )
        )
    assert_never_sent_later(pipeline)
