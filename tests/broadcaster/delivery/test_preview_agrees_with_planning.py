"""What an approver previews is what planning stores: for an audience with every reason a message is held back
(no address, landline, opted out, suppressed, no prior consent, do-not-call, the campaign's list, a duplicate
address, an SMS past its parts, a tag the campaign excludes) and a recipient deferred by the cap, the
preview's counts per channel equal those of the planned rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from broadcaster.campaigns.audience import Exclusion
from broadcaster.campaigns.preview import Preview, preview_version
from broadcaster.campaigns.store import get_version
from broadcaster.eligibility import DEFERRED_BY_CAP
from broadcaster.outbox.planner import RECORDED_EXCLUSIONS
from broadcaster.vocabulary import MessageStatus
from consent import ledger
from consent.models import CampaignExclusion
from consent.suppression import suppress
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.test_consent_policy import local, on_do_not_call, phone, sent_earlier
from tests.broadcaster.delivery.workdir_files import citizen, citizens
from tests.broadcaster.opt_outs import opt_out

CAMPAIGN = "uu-dai-dich-vu-cong"
# One part for a usual name; two (past max_segments: 1) for the long one.
SMS_TEXT = (
    "[QC] {{ org.short_name }}: {{ contact.full_name }} duoc giam phi dich vu cong. Tu choi: TC gui 8xxx."
)
LONG_NAME = "Nguyễn " + "Thị " * 30 + "Minh Anh"
SMS_SPEC = {"template": "sms/thu-nghiem", "provider": "sms_main", "unaccented": True, "max_segments": 1}
CHANNELS = {"sms": SMS_SPEC, "email": {"template": "email/thu-nghiem", "provider": "mail"}}


def audience(pipeline: Pipeline) -> None:
    """Contacts 1-14; each of 2-13 is held back (or deferred) on at least one channel for its own reason."""
    pipeline.add_contacts(
        [
            *citizens(1),
            citizen(2, phone="0236 3822 002"),  # a Đà Nẵng landline: no SMS
            citizen(3, phone=""),  # no phone
            citizen(4, email=""),  # no e-mail
            *citizens(4, first=5),  # 5 opts out of SMS, 6 suppressed, 7 never agreed, 8 on the register
            citizen(9, email="CONG.DAN1@example.vn"),  # 1's mailbox spelt otherwise: a duplicate
            citizen(10, phone="0912000001"),  # 1's phone: a duplicate
            citizen(11, full_name=LONG_NAME),  # an SMS of two parts
            *citizens(2, first=12),  # 12 on the campaign's list, 13 capped
            citizen(14, tags="khong-nhan"),  # outside the audience
        ]
    )
    with pipeline.context.sessions.begin() as session:
        now = pipeline.clock.now()
        for number in range(1, 15):
            if number == 7:
                continue
            for channel, address in (("sms", phone(number)), ("email", f"cong.dan{number}@example.vn")):
                ledger.grant(
                    session,
                    channel=channel,
                    address=address,
                    purpose="advertising",
                    source="web_form",
                    notice_version="v1",
                    notices_dir=pipeline.context.notices_dir,
                    recorded_by="test",
                    at=now - timedelta(days=30),
                )
        opt_out(session, "DN-000005", "sms", at=now, purpose="advertising")
        opt_out(session, "DN-000004", "sms", at=now, purpose="advertising")  # withdrawn, and no e-mail
        suppress(session, channel="sms", address=phone(6), reason="unknown subscriber", source="test", at=now)
        suppress(
            session,
            channel="email",
            address="cong.dan6@example.vn",
            reason="5.1.1 user unknown",
            source="test",
            at=now,
        )
        session.add(
            CampaignExclusion(
                campaign_id=CAMPAIGN,
                channel="sms",
                address=phone(12),
                list_name="danh-sach-loai-tru.csv",
                added_by="test",
                added_at=now,
            )
        )
    on_do_not_call(pipeline, 8)
    sent_earlier(pipeline, 13, [local(2, 9, 0), local(2, 9, 10), local(2, 9, 20)])


def planned(pipeline: Pipeline, run_id: int) -> dict[str, object]:
    """The preview's figures, counted from the planned rows."""
    figures: dict[str, object] = {}
    reached: set[int | None] = set()
    for channel in ("sms", "email"):
        rows = pipeline.messages(run_id, channel=channel)
        queued = [m for m in rows if m.status == MessageStatus.QUEUED]
        reached |= {m.contact_id for m in queued}
        figures[channel] = {
            "recipients": len(queued),
            "exclusions": Counter(m.reason for m in rows if m.status == MessageStatus.SUPPRESSED),
            "deferred": Counter(m.reason for m in queued if m.reason),
            "encodings": Counter(m.encoding for m in queued if m.encoding),
            "segments": sum(m.segments or 0 for m in queued),
            "cost": pytest.approx(sum(m.cost or 0 for m in queued)),
        }
    figures["reached"] = len(reached)
    return figures


def previewed(preview: Preview) -> dict[str, object]:
    figures: dict[str, object] = {"reached": preview.reached_contacts}
    for item in preview.channels:
        figures[item.channel] = {
            "recipients": item.recipients,
            # Planning stores a row for these reasons only; a contact without an address, or a second
            # contact with one, is not part of the channel's rows.
            "exclusions": Counter({k: v for k, v in item.exclusions.items() if k in RECORDED_EXCLUSIONS}),
            "deferred": Counter(item.deferred),
            "encodings": Counter(item.encodings),
            "segments": item.segments,
            "cost": item.estimated_cost,
        }
    return figures


@pytest.mark.parametrize("samples", [0, 3])
def test_the_preview_counts_what_planning_stores(pipeline: Pipeline, samples: int) -> None:
    pipeline.clock.set(local(2, 10, 0))
    audience(pipeline)
    campaign_id = pipeline.approved_campaign(
        id=CAMPAIGN,
        purpose="advertising",
        sms_text=SMS_TEXT,
        channels=CHANNELS,
        audience={"segments": ["citizen"], "exclude_tags": ["khong-nhan"]},
    )
    with pipeline.context.readers() as session:
        version = get_version(session, campaign_id, None)
        preview = preview_version(
            session, version, pipeline.context.settings, now=pipeline.clock.now(), samples=samples
        )
        assert version.audience_size == preview.reached_contacts  # what submit counted
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)

    assert previewed(preview) == planned(pipeline, run_id)
    sms, email = preview.channels
    assert preview.audience_contacts == 13
    once = [Exclusion.LANDLINE, Exclusion.NO_PHONE, Exclusion.SUPPRESSED, Exclusion.NO_PRIOR_CONSENT]
    once += [Exclusion.DO_NOT_CALL, Exclusion.DUPLICATE, Exclusion.TOO_LONG, Exclusion.CAMPAIGN_LIST]
    assert sms.exclusions == dict.fromkeys(once, 1) | {Exclusion.OPTED_OUT: 2}  # 4 and 5 withdrew
    assert (sms.recipients, sms.deferred) == (3, {DEFERRED_BY_CAP: 1})  # 1, 9 and 13 (capped)
    held_back = [Exclusion.NO_EMAIL, Exclusion.SUPPRESSED, Exclusion.NO_PRIOR_CONSENT, Exclusion.DUPLICATE]
    assert (email.recipients, email.exclusions) == (9, dict.fromkeys(held_back, 1))
    assert [len(item.samples) for item in preview.channels] == [min(samples, 3)] * 2
