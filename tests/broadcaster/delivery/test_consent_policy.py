"""The consent policy by purpose, at planning and right before each window, through the real planner and
dispatcher to the sandbox SMSC: prior consent, the do-not-call register, a campaign's exclusion list, send
hours and per-recipient caps on the controllable clock (never sleeping), and a withdrawal that comes after
planning.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from broadcaster.campaigns.audience import Exclusion
from broadcaster.campaigns.preview import ChannelPreview, preview_version
from broadcaster.campaigns.store import get_version
from broadcaster.db.models import Message
from broadcaster.eligibility import DEFERRED_BY_CAP, DEFERRED_BY_HOURS
from broadcaster.vocabulary import MessageKind, MessageStatus
from consent import ledger
from consent.models import CampaignExclusion, DoNotCallEntry, DoNotCallImport
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.workdir_files import citizen, citizens
from tests.broadcaster.opt_outs import opt_out

ADVERTISING_SMS = "[QC] {{ org.short_name }}: uu dai phi dich vu cong truc tuyen. Tu choi: soan TC gui 8xxx."
# Accepted by the SMSC; its receipt may already have come.
WRITTEN = {MessageStatus.SENT, MessageStatus.DELIVERED}
NOTICE_SMS = "{{ org.short_name }}: thu tuc {{ vars.thu_tuc }} nhan truc tuyen tu {{ vars.ngay }}."


def phone(number: int) -> str:
    return f"+84912{number:06d}"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of June 2025 in Da Nang (UTC+7), as UTC."""
    return datetime(2025, 6, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


def sms_campaign(pipeline: Pipeline, *, purpose: str, campaign_id: str, text: str | None = None) -> str:
    return pipeline.approved_campaign(
        id=campaign_id,
        purpose=purpose,
        template=campaign_id,
        channels={"sms": {"template": f"sms/{campaign_id}", "provider": "sms_main", "unaccented": True}},
        sms_text=text or (ADVERTISING_SMS if purpose == "advertising" else NOTICE_SMS),
    )


def grant(pipeline: Pipeline, numbers: Iterable[int], *, purpose: str = "advertising") -> None:
    with pipeline.context.sessions.begin() as session:
        for number in numbers:
            ledger.grant(
                session,
                channel="sms",
                address=phone(number),
                purpose=purpose,
                source="web_form",
                notice_version="v1",
                notices_dir=pipeline.context.notices_dir,
                recorded_by="test",
                at=pipeline.clock.now() - timedelta(days=30),
            )


def sent_earlier(
    pipeline: Pipeline, number: int, moments: Iterable[datetime], *, purpose: str = "advertising"
) -> None:
    """SMS of ``purpose`` the number got before (from another campaign), as the outbox keeps them."""
    with pipeline.context.sessions.begin() as session:
        for i, moment in enumerate(moments):
            session.add(
                Message(
                    idempotency_key=f"earlier:{number}:{i}",
                    kind=MessageKind.CAMPAIGN,
                    channel="sms",
                    provider="sms_main",
                    address=phone(number),
                    address_key=phone(number),
                    purpose=purpose,
                    status=MessageStatus.SENT,
                    body="[QC] truoc do",
                    attempts=1,
                    created_at=moment,
                    sent_at=moment,
                )
            )


def on_do_not_call(pipeline: Pipeline, number: int) -> None:
    """The number is on the register, as an import leaves it (the import itself is tested with its command)."""
    with pipeline.context.sessions.begin() as session:
        session.add(
            DoNotCallImport(
                source_name="dnc.csv",
                sha256="0" * 64,
                numbers=1,
                imported_by="test",
                imported_at=pipeline.clock.now(),
            )
        )
        session.flush()
        latest = session.scalar(select(func.max(DoNotCallImport.id)))
        session.add(DoNotCallEntry(phone=phone(number), import_id=latest))


def on_campaign_list(pipeline: Pipeline, campaign_id: str, number: int) -> None:
    with pipeline.context.sessions.begin() as session:
        session.add(
            CampaignExclusion(
                campaign_id=campaign_id,
                channel="sms",
                address=phone(number),
                list_name="danh-sach-loai-tru.csv",
                added_by="test",
                added_at=pipeline.clock.now(),
            )
        )


def when_the_clock_reaches(pipeline: Pipeline, moment: datetime) -> None:
    """Move the clock; the tick cuts chunks for the rows due by then, and they are sent."""
    pipeline.clock.set(moment)
    pipeline.tick()
    pipeline.drain()


def by_address(pipeline: Pipeline, run_id: int) -> dict[str, Message]:
    return {m.address: m for m in pipeline.messages(run_id)}


def submitted(pipeline: Pipeline) -> set[str]:
    return {"+" + s.destination for s in pipeline.smsc.submits}


def test_advertising_planned_at_22_30_waits_until_07_00_and_goes_when_the_clock_gets_there(
    pipeline: Pipeline,
) -> None:
    pipeline.add_contacts(citizens(3))
    grant(pipeline, [1, 2, 3])
    campaign_id = sms_campaign(pipeline, purpose="advertising", campaign_id="quang-cao")
    pipeline.clock.set(local(2, 22, 30))

    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    pipeline.drain()

    rows = pipeline.messages(run_id)
    assert [(m.status, m.not_before, m.reason) for m in rows] == [
        (MessageStatus.QUEUED, local(3, 7, 0), DEFERRED_BY_HOURS)
    ] * 3
    assert pipeline.enqueuer.chunks == []
    assert submitted(pipeline) == set()

    when_the_clock_reaches(pipeline, local(3, 6, 59))
    assert submitted(pipeline) == set()

    when_the_clock_reaches(pipeline, local(3, 7, 0))
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 3)
    assert submitted(pipeline) == {phone(1), phone(2), phone(3)}
    assert all(m.sent_at == local(3, 7, 0) for m in pipeline.messages(run_id))


def test_a_recipient_with_three_advertising_sms_in_24_hours_waits_until_the_oldest_ages_out(
    pipeline: Pipeline,
) -> None:
    pipeline.add_contacts(citizens(2))
    grant(pipeline, [1, 2])
    pipeline.clock.set(local(2, 10, 0))
    sent_earlier(pipeline, 1, [local(1, 12, 0), local(1, 20, 0), local(2, 9, 0)])
    sent_earlier(pipeline, 2, [local(1, 8, 0), local(2, 9, 0)])  # one of them is older than 24 hours
    campaign_id = sms_campaign(pipeline, purpose="advertising", campaign_id="quang-cao")

    run_id = pipeline.send(campaign_id)

    rows = by_address(pipeline, run_id)
    assert (rows[phone(1)].status, rows[phone(1)].not_before) == (MessageStatus.QUEUED, local(2, 12, 0))
    assert rows[phone(1)].reason == DEFERRED_BY_CAP
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 1)
    assert submitted(pipeline) == {phone(2)}

    when_the_clock_reaches(pipeline, local(2, 12, 0))
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 2)
    assert submitted(pipeline) == {phone(1), phone(2)}


def test_a_cap_reached_after_planning_defers_the_row_right_before_its_window(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(2))
    grant(pipeline, [1, 2])
    pipeline.clock.set(local(2, 10, 0))
    campaign_id = sms_campaign(pipeline, purpose="advertising", campaign_id="quang-cao")
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    assert {m.status for m in pipeline.messages(run_id)} == {MessageStatus.QUEUED}

    # Another campaign sent it three meanwhile.
    sent_earlier(pipeline, 2, [local(2, 9, 0), local(2, 9, 30), local(2, 9, 45)])
    pipeline.drain()

    row = by_address(pipeline, run_id)[phone(2)]
    assert (row.status, row.not_before, row.reason) == (MessageStatus.QUEUED, local(3, 9, 0), DEFERRED_BY_CAP)
    assert (row.chunk_id, row.attempts, row.claimed_by, row.handed_at) == (None, 0, None, None)
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 1)
    assert submitted(pipeline) == {phone(1)}

    when_the_clock_reaches(pipeline, local(3, 9, 0))
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 2)
    assert by_address(pipeline, run_id)[phone(2)].attempts == 1


def test_advertising_without_prior_consent_is_excluded_and_with_it_is_sent(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(4))
    grant(pipeline, [1, 3])
    grant(pipeline, [2], purpose="public_information")  # consent for another purpose is not consent
    with pipeline.context.sessions.begin() as session:
        opt_out(session, "DN-000003", "sms", at=pipeline.clock.now(), purpose="advertising")

    run_id = pipeline.send(sms_campaign(pipeline, purpose="advertising", campaign_id="quang-cao"))

    rows = by_address(pipeline, run_id)
    assert {a: (m.status, m.reason) for a, m in rows.items() if m.status == MessageStatus.SUPPRESSED} == {
        phone(2): (MessageStatus.SUPPRESSED, Exclusion.NO_PRIOR_CONSENT),
        phone(3): (MessageStatus.SUPPRESSED, Exclusion.OPTED_OUT),
        phone(4): (MessageStatus.SUPPRESSED, Exclusion.NO_PRIOR_CONSENT),
    }
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 1)
    assert submitted(pipeline) == {phone(1)}


def test_a_withdrawal_after_planning_suppresses_the_row_right_before_its_window(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline(sms={"window": 2})  # the first window is withdrawn whole: the chunk goes on
    pipeline.add_contacts(citizens(6))
    run_id = pipeline.start_run(sms_campaign(pipeline, purpose="public_information", campaign_id="thong-bao"))
    pipeline.plan(run_id)
    assert {m.status for m in pipeline.messages(run_id)} == {MessageStatus.QUEUED}

    with pipeline.context.sessions.begin() as session:
        for number in (1, 2, 5):
            ledger.withdraw(
                session,
                channel="sms",
                address=phone(number),
                purpose="public_information",
                source="sms_keyword",
                recorded_by="test",
                at=pipeline.clock.now(),
            )
    pipeline.drain()

    rows = by_address(pipeline, run_id)
    for number in (1, 2, 5):
        row = rows[phone(number)]
        assert (row.status, row.reason, row.handed_at) == (
            MessageStatus.SUPPRESSED,
            Exclusion.OPTED_OUT,
            None,
        )
        assert row.final_at == pipeline.clock.now()
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 3)
    assert submitted(pipeline) == {phone(3), phone(4), phone(6)}


def test_the_do_not_call_register_binds_advertising_but_not_public_information(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(3))
    grant(pipeline, [1, 2, 3])
    on_do_not_call(pipeline, 2)

    advertising = pipeline.send(sms_campaign(pipeline, purpose="advertising", campaign_id="quang-cao"))
    notice = pipeline.send(sms_campaign(pipeline, purpose="public_information", campaign_id="thong-bao"))

    ads = by_address(pipeline, advertising)
    assert (ads[phone(2)].status, ads[phone(2)].reason) == (MessageStatus.SUPPRESSED, Exclusion.DO_NOT_CALL)
    assert {m.status for a, m in ads.items() if a != phone(2)} <= WRITTEN
    assert by_address(pipeline, notice)[phone(2)].status in WRITTEN
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 5)
    assert sorted("+" + s.destination for s in pipeline.smsc.submits).count(phone(2)) == 1


def test_the_campaigns_exclusion_list_is_honoured_at_planning_and_before_each_window(
    pipeline: Pipeline,
) -> None:
    pipeline.add_contacts(citizens(4))
    campaign_id = sms_campaign(pipeline, purpose="official_duty", campaign_id="chi-dao")

    on_campaign_list(pipeline, campaign_id, 2)
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    assert by_address(pipeline, run_id)[phone(2)].reason == Exclusion.CAMPAIGN_LIST
    on_campaign_list(pipeline, campaign_id, 3)  # after planning
    pipeline.drain()

    rows = by_address(pipeline, run_id)
    assert {a: m.reason for a, m in rows.items() if m.status == MessageStatus.SUPPRESSED} == {
        phone(2): Exclusion.CAMPAIGN_LIST,
        phone(3): Exclusion.CAMPAIGN_LIST,
    }
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 2)
    assert submitted(pipeline) == {phone(1), phone(4)}


def test_official_duty_ignores_withdrawals_made_before_and_after_planning(pipeline: Pipeline) -> None:
    pipeline.add_contacts([citizen(1), citizen(2)])
    with pipeline.context.sessions.begin() as session:
        for purpose in ledger.PURPOSES:
            opt_out(session, "DN-000001", "sms", at=pipeline.clock.now(), purpose=purpose)
    campaign_id = sms_campaign(pipeline, purpose="official_duty", campaign_id="chi-dao")
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    with pipeline.context.sessions.begin() as session:  # after planning: also a withdrawal at the window
        opt_out(session, "DN-000002", "sms", at=pipeline.clock.now(), purpose="official_duty")
    pipeline.drain()

    assert {m.status for m in pipeline.messages(run_id)} <= WRITTEN
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 2)
    assert submitted(pipeline) == {phone(1), phone(2)}


def test_preview_counts_each_policy_reason_and_the_deferred_by_hours_and_by_caps(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(5))
    grant(pipeline, [1, 3, 4, 5])  # 2 never agreed
    on_do_not_call(pipeline, 3)
    on_campaign_list(pipeline, "quang-cao", 4)
    sent_earlier(pipeline, 5, [local(2, 9, 0), local(2, 9, 10), local(2, 9, 20)])
    campaign_id = sms_campaign(pipeline, purpose="advertising", campaign_id="quang-cao")

    def preview_at(moment: datetime) -> ChannelPreview:
        pipeline.clock.set(moment)
        with pipeline.context.readers() as session:
            version = get_version(session, campaign_id, None)
            preview = preview_version(session, version, pipeline.context.settings, now=moment)
        (sms,) = preview.channels
        return sms

    morning = preview_at(local(2, 10, 0))
    assert morning.exclusions == {
        Exclusion.NO_PRIOR_CONSENT: 1,
        Exclusion.DO_NOT_CALL: 1,
        Exclusion.CAMPAIGN_LIST: 1,
    }
    assert (morning.recipients, morning.deferred) == (2, {DEFERRED_BY_CAP: 1})

    night = preview_at(local(2, 22, 30))
    # At 07:00 the capped one still has its three sends of 09:00-09:20 in the window: it waits for the cap.
    assert (night.recipients, night.deferred) == (2, {DEFERRED_BY_HOURS: 1, DEFERRED_BY_CAP: 1})


def test_send_hours_and_caps_from_the_settings_replace_the_defaults(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(
        settings_sections={
            "consent.purposes.public_information.send_hours.sms": {"opens": "08:30", "closes": "17:00"},
            "consent.purposes.public_information.caps_per_24h": {"sms": 1},
        }
    )
    pipeline.add_contacts(citizens(2))
    sent_earlier(pipeline, 2, [local(1, 12, 0)], purpose="public_information")
    pipeline.clock.set(local(2, 8, 0))

    run_id = pipeline.send(sms_campaign(pipeline, purpose="public_information", campaign_id="thong-bao"))

    rows = by_address(pipeline, run_id)
    assert (rows[phone(1)].not_before, rows[phone(1)].reason) == (local(2, 8, 30), DEFERRED_BY_HOURS)
    # Its cap frees at 12:00, after the hours open: it waits for the cap.
    assert (rows[phone(2)].not_before, rows[phone(2)].reason) == (local(2, 12, 0), DEFERRED_BY_CAP)
    assert submitted(pipeline) == set()
    when_the_clock_reaches(pipeline, local(2, 8, 30))
    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 1)
    assert submitted(pipeline) == {phone(1)}
