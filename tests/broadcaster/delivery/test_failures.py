"""Failures against real peers: adapters classify, the engine decides (docs/architecture.md §4).

* 550 5.1.1 at RCPT: that recipient fails for good, is suppressed, and is never tried again;
* 550 5.7.1 at MAIL FROM: a configuration error, so the campaign pauses, the window goes back to ``queued`` and
  nobody is suppressed;
* 451 4.3.0: retried after the back-off (``not_before`` + the tick under a moved clock), ``technical_failure``
  once the back-off list is used up;
* more than the set share of a window failing permanently pauses the campaign before anyone is suppressed;
* an uncertain outcome (no reply after the body, or a worker lost mid-window) is held or resent per
  ``on_uncertain``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from broadcaster.db.models import AuditEntry, Campaign, Message
from broadcaster.suppressing import SUPPRESS_ACTION
from broadcaster.vocabulary import CampaignState, MessageStatus
from channels.masking import mask_email, mask_phone
from channels.sandbox.smsc import SmscBehaviour
from channels.sandbox.smtp import SmtpBehaviour
from consent.models import Suppression
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_sms_delivery import sms_only
from tests.broadcaster.delivery.workdir_files import citizens


def email_campaign(pipeline: Pipeline, **overrides: object) -> str:
    return pipeline.approved_campaign(
        channels={"email": {"template": "email/thu-nghiem", "provider": "mail"}}, **overrides
    )


def campaign_state(pipeline: Pipeline, campaign_id: str) -> tuple[CampaignState, str | None]:
    with pipeline.context.readers() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.state, campaign.paused_reason


def suppressed(pipeline: Pipeline) -> set[str]:
    with pipeline.context.readers() as session:
        return set(session.scalars(select(Suppression.address)))


def suppression_audit(pipeline: Pipeline) -> list[AuditEntry]:
    with pipeline.context.readers() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == SUPPRESS_ACTION)))


def retry_round(pipeline: Pipeline, *, seconds: float) -> int:
    """Move the clock, tick, run what the tick enqueued; returns how many chunks the tick cut."""
    pipeline.advance(seconds=seconds)
    chunks = pipeline.tick().chunks
    pipeline.drain()
    return chunks


def test_a_5_1_1_recipient_fails_permanently_is_suppressed_and_never_retried(
    make_pipeline: PipelineFactory,
) -> None:
    people = citizens(12)
    unknown = people[4]["email"]
    pipeline = make_pipeline(smtp=SmtpBehaviour(reject_recipients=[unknown]))
    pipeline.add_contacts(people)
    campaign_id = email_campaign(pipeline)

    run_id = pipeline.send(campaign_id)

    assert pipeline.counts(run_id) == {("email", "sent"): 11, ("email", "permanent_failure"): 1}
    failed = next(m for m in pipeline.messages(run_id) if m.address == unknown)
    assert failed.attempts == 1
    assert failed.error_code is not None
    assert "5.1.1" in (failed.reason or "")
    assert suppressed(pipeline) == {unknown}
    # One bad address pauses nothing: the one-off campaign went out and is completed.
    assert campaign_state(pipeline, campaign_id)[0] == CampaignState.COMPLETED

    assert retry_round(pipeline, seconds=3600) == 0  # nothing is due again
    assert pipeline.smtp.wait_for_count(11)
    assert all(unknown not in mail.rcpt_tos for mail in pipeline.smtp.received)

    # The next run of the campaign does not even plan a message to that address.
    second = pipeline.send(campaign_id, again=True)
    row = next(m for m in pipeline.messages(second) if m.address == unknown)
    assert row.status == MessageStatus.SUPPRESSED
    assert row.attempts == 0
    [entry] = suppression_audit(pipeline)  # one entry for one address, however many times it is met
    assert (entry.actor, entry.subject_type, entry.subject_id) == ("engine", "address", mask_email(unknown))
    assert entry.details["source"] == "mail:550 5.1.1"
    assert unknown not in (entry.reason or "")


def test_an_smpp_invalid_destination_suppresses_the_number_with_an_audit_entry(
    make_pipeline: PipelineFactory,
) -> None:
    people = citizens(8)
    bad = "+" + people[5]["phone"].replace("0", "84", 1)
    pipeline = make_pipeline(smsc=SmscBehaviour(reject={bad[1:]: 0x0B}))  # ESME_RINVDSTADR
    pipeline.add_contacts(people)

    run_id = pipeline.send(sms_only(pipeline, text="Thong bao thu nghiem", unaccented=True))

    assert pipeline.counts(run_id)[("sms", "permanent_failure")] == 1
    assert suppressed(pipeline) == {bad}
    [entry] = suppression_audit(pipeline)
    assert entry.subject_id == mask_phone(bad)
    assert entry.details["channel"] == "sms"
    assert entry.details["source"].startswith("sms_main:")


def test_a_5_7_x_reply_to_mail_from_pauses_the_campaign_as_a_configuration_error(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline(smtp=SmtpBehaviour(reject_senders=["*"]))
    pipeline.add_contacts(citizens(30))
    campaign_id = email_campaign(pipeline)

    run_id = pipeline.send(campaign_id)

    state, reason = campaign_state(pipeline, campaign_id)
    assert state == CampaignState.PAUSED
    assert reason is not None
    assert "configuration error" in reason
    assert "5.7.1" in reason
    rows = pipeline.messages(run_id)
    assert {m.status for m in rows} == {MessageStatus.QUEUED}  # handed back untouched
    assert all(m.attempts == 0 and m.chunk_id is None for m in rows)
    assert suppressed(pipeline) == set()  # nobody pays for our misconfiguration
    assert pipeline.smtp.received == []

    # A paused campaign stays put under the tick, whatever the clock says.
    assert retry_round(pipeline, seconds=3600) == 0
    assert pipeline.counts(run_id) == {("email", "queued"): 30}

    # The relay is fixed and an operator resumes: everything goes, once.
    pipeline.smtp.behaviour = SmtpBehaviour()
    pipeline.resume(campaign_id)
    assert retry_round(pipeline, seconds=1) >= 1
    assert pipeline.counts(run_id) == {("email", "sent"): 30}
    assert pipeline.smtp.wait_for_count(30)
    assert len(pipeline.smtp.received) == 30


def test_a_transient_451_is_retried_with_back_off_then_gives_up(make_pipeline: PipelineFactory) -> None:
    # retry_backoff = [30, 120]: attempt 1 fails -> +30 s, attempt 2 fails -> +120 s, attempt 3 fails -> give up.
    pipeline = make_pipeline(smtp=SmtpBehaviour(temporary_every=1))
    pipeline.add_contacts(citizens(5))
    campaign_id = email_campaign(pipeline)
    run_id = pipeline.send(campaign_id)
    started = pipeline.clock.now()

    rows = pipeline.messages(run_id)
    assert {(m.status, m.attempts, m.not_before) for m in rows} == {
        (MessageStatus.QUEUED, 1, started + timedelta(seconds=30))
    }
    assert all("451" in (m.error_code or "") + (m.reason or "") for m in rows)

    assert retry_round(pipeline, seconds=29) == 0  # not due yet: the tick leaves them alone
    assert retry_round(pipeline, seconds=1) == 1  # due: one fresh chunk
    rows = pipeline.messages(run_id)
    assert {(m.status, m.attempts) for m in rows} == {(MessageStatus.QUEUED, 2)}
    assert {m.not_before for m in rows} == {pipeline.clock.now() + timedelta(seconds=120)}

    assert retry_round(pipeline, seconds=119) == 0
    assert retry_round(pipeline, seconds=1) == 1
    assert pipeline.counts(run_id) == {("email", "technical_failure"): 5}
    assert all(
        m.attempts == 3 and "gave up after 3 attempts" in (m.reason or "") for m in pipeline.messages(run_id)
    )
    assert suppressed(pipeline) == set()
    assert retry_round(pipeline, seconds=3600) == 0  # bounded: nothing more


def test_a_transient_failure_then_success_delivers_once(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(smtp=SmtpBehaviour(temporary_every=3))
    pipeline.add_contacts(citizens(30))
    run_id = pipeline.send(email_campaign(pipeline))
    assert pipeline.counts(run_id)[("email", "queued")] > 0
    pipeline.smtp.behaviour = SmtpBehaviour()

    retry_round(pipeline, seconds=30)

    assert pipeline.counts(run_id) == {("email", "sent"): 30}
    assert pipeline.smtp.wait_for_count(30)
    assert sorted(r for mail in pipeline.smtp.received for r in mail.rcpt_tos) == sorted(
        p["email"] for p in citizens(30)
    )


def test_a_window_failing_beyond_the_share_pauses_before_suppressing(make_pipeline: PipelineFactory) -> None:
    people = citizens(40)
    bad = [p["email"] for p in people[:30]]  # 30 of 40 in one window of 50: 75 % > 50 %
    pipeline = make_pipeline(smtp=SmtpBehaviour(reject_recipients=bad))
    pipeline.add_contacts(people)
    campaign_id = email_campaign(pipeline)

    run_id = pipeline.send(campaign_id)

    state, reason = campaign_state(pipeline, campaign_id)
    assert state == CampaignState.PAUSED
    assert reason is not None
    assert "30 of 40" in reason
    assert "nobody was suppressed" in reason
    assert pipeline.counts(run_id) == {("email", "sent"): 10, ("email", "queued"): 30}
    assert suppressed(pipeline) == set()
    assert all(m.attempts == 0 for m in pipeline.messages(run_id) if m.status == MessageStatus.QUEUED)


def test_a_window_below_the_share_fails_and_suppresses_only_the_bad_addresses(
    make_pipeline: PipelineFactory,
) -> None:
    people = citizens(40)
    bad = [p["email"] for p in people[:5]]
    pipeline = make_pipeline(smtp=SmtpBehaviour(reject_recipients=bad))
    pipeline.add_contacts(people)
    campaign_id = email_campaign(pipeline)

    run_id = pipeline.send(campaign_id)

    assert campaign_state(pipeline, campaign_id)[0] == CampaignState.COMPLETED  # not paused
    assert pipeline.counts(run_id) == {("email", "sent"): 35, ("email", "permanent_failure"): 5}
    assert suppressed(pipeline) == set(bad)


@pytest.mark.parametrize("policy", ["hold", "resend"])
def test_no_reply_after_the_body_is_held_or_resent(make_pipeline: PipelineFactory, policy: str) -> None:
    # The relay keeps every 2nd mail but hangs up instead of answering the final dot (RFC 5321 §4.2.5: we
    # cannot know whether it took responsibility).
    pipeline = make_pipeline(smtp=SmtpBehaviour(drop_after_data_every=2), mail={"connections": 1})
    pipeline.add_contacts(citizens(6))
    run_id = pipeline.send(email_campaign(pipeline, on_uncertain=policy))
    pipeline.smtp.behaviour = SmtpBehaviour()
    uncertain = [m for m in pipeline.messages(run_id) if m.status != MessageStatus.SENT]
    assert uncertain, "the relay never dropped a reply"

    retry_round(pipeline, seconds=3600)

    rows = {m.id: m for m in pipeline.messages(run_id)}
    received = [r for mail in pipeline.smtp.received for r in mail.rcpt_tos]
    if policy == "hold":
        assert {rows[m.id].status for m in uncertain} == {MessageStatus.UNKNOWN}
        assert all(rows[m.id].hold for m in uncertain)
        assert all(received.count(m.address) == 1 for m in uncertain)  # never sent twice blindly
    else:
        assert {rows[m.id].status for m in uncertain} == {MessageStatus.SENT}
        assert all(received.count(m.address) == 2 for m in uncertain)  # a duplicate is the accepted cost


@pytest.mark.parametrize("policy", ["hold", "resend"])
def test_the_sweeper_holds_or_resends_rows_stuck_in_sending(
    make_pipeline: PipelineFactory, policy: str
) -> None:
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(8))
    campaign_id = email_campaign(pipeline, on_uncertain=policy)
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    pipeline.enqueuer.chunks.clear()  # the worker that took the chunk dies mid-window:
    claimed_at = pipeline.clock.now()
    ids = [m.id for m in pipeline.messages(run_id)]
    handed, never_handed = ids[:5], ids[5:]  # it had written five when it died
    with pipeline.context.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.run_id == run_id)
            .values(status=MessageStatus.SENDING, claimed_at=claimed_at, attempts=1)
        )
        session.execute(update(Message).where(Message.id.in_(handed)).values(handed_at=claimed_at))

    pipeline.advance(seconds=599)
    assert pipeline.tick().swept_sending == 0  # not stuck yet (stuck_after_seconds = 600)
    pipeline.advance(seconds=2)
    report = pipeline.tick()
    assert report.swept_sending == 8
    pipeline.drain()

    rows = {m.id: m for m in pipeline.messages(run_id)}
    # What it never handed over cannot be at the relay: sent now, once, whatever the policy.
    assert {rows[i].status for i in never_handed} == {MessageStatus.SENT}
    assert all(rows[i].attempts == 1 for i in never_handed)
    if policy == "hold":
        assert {rows[i].status for i in handed} == {MessageStatus.UNKNOWN}
        assert all(rows[i].hold and "held for an operator" in (rows[i].reason or "") for i in handed)
        assert pipeline.smtp.wait_for_count(3)
        assert len(pipeline.smtp.received) == 3
    else:
        assert pipeline.counts(run_id) == {("email", "sent"): 8}
        assert pipeline.smtp.wait_for_count(8)
        assert len(pipeline.smtp.received) == 8


def test_a_window_that_cannot_be_rendered_goes_back_to_the_queue_untouched(
    make_pipeline: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Templates run after the claim has committed (not under the write lock); if they fail, the claimed rows
    return to ``queued`` as they were, and a later try sends them."""
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(5))
    campaign_id = email_campaign(pipeline)
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    pipeline.start_engine()
    assert pipeline.dispatcher is not None

    def broken(*_args: object, **_kwargs: object) -> str:
        raise RuntimeError("template engine broke")

    chunk_id, _queue = pipeline.enqueuer.chunks.pop(0)
    with monkeypatch.context() as patch:
        patch.setattr("broadcaster.outbox.composition.outbound_message", broken)
        with pytest.raises(RuntimeError, match="template engine broke"):
            pipeline.run_chunk(chunk_id)

    rows = pipeline.messages(run_id)
    assert {m.status for m in rows} == {MessageStatus.QUEUED}
    assert all(m.attempts == 0 and m.claimed_at is None for m in rows)
    assert pipeline.smtp.received == []

    pipeline.run_chunk(chunk_id)
    assert pipeline.counts(run_id) == {("email", "sent"): 5}
