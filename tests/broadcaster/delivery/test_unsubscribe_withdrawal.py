"""The one-click link of a mail records a withdrawal in the consent ledger; the next run leaves the address out."""

from __future__ import annotations

from sqlalchemy import func, select

from broadcaster.campaigns.audience import Exclusion
from broadcaster.db.models import AuditEntry
from broadcaster.unsubscribe_withdrawal import withdraw_by_token
from broadcaster.vocabulary import MessageStatus
from consent import ledger
from consent.models import ConsentEvent
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.test_email_opt_out import email_campaign, one_click_link
from tests.broadcaster.delivery.workdir_files import citizens


def _token_and_address(pipeline: Pipeline) -> tuple[str, str]:
    mail = pipeline.smtp.received[0].message()
    return one_click_link(mail).rsplit("/", 1)[1], str(mail["To"])


def test_the_link_withdraws_consent_for_the_campaigns_purpose(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(2))
    campaign = email_campaign(pipeline, purpose="public_information")
    pipeline.send(campaign)
    assert pipeline.smtp.wait_for_count(2)
    token, address = _token_and_address(pipeline)
    secret = pipeline.context.settings.security.unsubscribe_secret

    with pipeline.context.sessions.begin() as session:
        event = withdraw_by_token(session, secret=secret, token=token, at=pipeline.clock.now())
        assert event is not None
        assert (event.action, event.source, event.purpose) == ("withdraw", "email_link", "public_information")
    with pipeline.context.readers() as session:
        assert ledger.current(session, "email", address, "public_information") is False
        assert ledger.current(session, "email", address, "advertising") is None
        audited = session.scalar(select(func.count()).where(AuditEntry.action == "consent.withdraw"))
        assert audited == 1

    pipeline.advance(minutes=1)
    run_id = pipeline.start_run(campaign, again=True)
    pipeline.plan(run_id)
    left_out = [m for m in pipeline.messages(run_id) if m.status == MessageStatus.SUPPRESSED]
    assert [(m.address.lower(), m.reason) for m in left_out] == [(address.lower(), Exclusion.OPTED_OUT)]


def test_a_forged_token_writes_nothing(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(1))
    pipeline.send(email_campaign(pipeline, purpose="public_information"))
    assert pipeline.smtp.wait_for_count(1)
    token, _address = _token_and_address(pipeline)
    message_id, tag = token.split(".")
    forged = [f"{int(message_id) + 1}.{tag}", f"{message_id}.{'A' * len(tag)}", "1.x"]
    with pipeline.context.sessions.begin() as session:
        for candidate in forged:
            assert (
                withdraw_by_token(session, secret="another secret", token=token, at=pipeline.clock.now())
                is None
            )
            secret = pipeline.context.settings.security.unsubscribe_secret
            assert withdraw_by_token(session, secret=secret, token=candidate, at=pipeline.clock.now()) is None
    with pipeline.context.readers() as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
        assert session.scalar(select(func.count()).where(AuditEntry.action == "consent.withdraw")) == 0
