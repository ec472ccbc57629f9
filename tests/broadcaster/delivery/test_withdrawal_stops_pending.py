"""Every way a withdrawal is recorded (SMS keyword, one-click link, staff command) stops the address's messages
not yet written to a provider, queued or claimed, in the same transaction; other addresses' messages go on."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from broadcaster.db.models import Message
from broadcaster.unsubscribe_withdrawal import withdraw_by_token
from broadcaster.vocabulary import MessageKind, MessageStatus
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.test_email_opt_out import email_campaign, one_click_link
from tests.broadcaster.delivery.test_sms_replies import MO_NUMBER, bound
from tests.broadcaster.delivery.workdir_files import citizens
from tests.broadcaster.test_cli import Cli
from tests.peers.polling import wait_until

OPTING_OUT = "+84912000001"  # citizens(...)[0]


def sms_run(pipeline: Pipeline, people: int) -> int:
    """An SMS campaign's run, planned: its messages wait in the queue."""
    pipeline.add_contacts(citizens(people))
    campaign = pipeline.approved_campaign(
        channels={"sms": {"template": "sms/thu-nghiem", "provider": "sms_main", "unaccented": True}}
    )
    run_id = pipeline.start_run(campaign)
    pipeline.plan(run_id)
    return run_id


def claim_as_a_sender_would(pipeline: Pipeline, address: str) -> None:
    """The address's message claimed for a window (sending, not handed over yet)."""
    with pipeline.context.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.address == address, Message.kind != MessageKind.SYSTEM)
            .values(status=MessageStatus.SENDING, claimed_at=pipeline.clock.now())
        )


def statuses(pipeline: Pipeline, run_id: int) -> dict[str, tuple[str, str | None]]:
    return {m.address.lower(): (m.status.value, m.reason) for m in pipeline.messages(run_id)}


def test_an_sms_keyword_stops_the_numbers_claimed_message(pipeline: Pipeline) -> None:
    run_id = sms_run(pipeline, 3)
    claim_as_a_sender_would(pipeline, OPTING_OUT)
    bound(pipeline)

    pipeline.smsc.inject_mo(OPTING_OUT.lstrip("+"), MO_NUMBER, "  HỦY ")
    wait_until(
        lambda: statuses(pipeline, run_id)[OPTING_OUT][0] == "suppressed" or None,
        timeout=10.0,
        what="the opt-out applied",
    )

    assert statuses(pipeline, run_id) == {
        OPTING_OUT: ("suppressed", "opted out of this channel"),
        "+84912000002": ("queued", None),
        "+84912000003": ("queued", None),
    }
    (confirmation,) = [m for m in pipeline.messages(channel="sms") if m.kind == MessageKind.SYSTEM]
    assert (confirmation.address, confirmation.status) == (OPTING_OUT, MessageStatus.QUEUED)


def test_the_one_click_link_stops_the_addresss_queued_mail(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(2))
    campaign = email_campaign(pipeline, purpose="public_information")
    pipeline.send(campaign)
    assert pipeline.smtp.wait_for_count(2)
    mail = next(m.message() for m in pipeline.smtp.received if "cong.dan1@" in str(m.message()["To"]))
    token = one_click_link(mail).rsplit("/", 1)[1]
    pipeline.advance(minutes=1)
    again = pipeline.start_run(campaign, again=True)
    pipeline.plan(again)  # planned before the click: both addresses are queued

    with pipeline.context.sessions.begin() as session:
        secret = pipeline.context.settings.security.unsubscribe_secret
        assert withdraw_by_token(session, secret=secret, token=token, at=pipeline.clock.now()) is not None

    assert statuses(pipeline, again) == {
        "cong.dan1@example.vn": ("suppressed", "opted out of this channel"),
        "cong.dan2@example.vn": ("queued", None),
    }
    pipeline.drain()
    assert pipeline.smtp.wait_for_count(3)
    assert statuses(pipeline, again)["cong.dan2@example.vn"][0] == "sent"
    assert len([m for m in pipeline.smtp.received if "cong.dan1@" in str(m.message()["To"])]) == 1


def test_a_staff_withdrawal_stops_only_the_purpose_withdrawn(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = sms_run(pipeline, 2)
    monkeypatch.chdir(pipeline.directory)
    cli = Cli(monkeypatch)

    cli("consent", "withdraw", "0912000001", "--purpose", "advertising", "--reason", "gọi điện")
    # The campaign informs, it does not advertise: its message goes on.
    assert statuses(pipeline, run_id)[OPTING_OUT] == ("queued", None)

    result = cli(
        "consent", "withdraw", "0912000001", "--purpose", "public_information", "--reason", "gọi điện"
    )
    assert "1 message(s) not yet sent" in " ".join(result.stdout.split())
    assert statuses(pipeline, run_id) == {
        OPTING_OUT: ("suppressed", "opted out of this channel"),
        "+84912000002": ("queued", None),
    }
