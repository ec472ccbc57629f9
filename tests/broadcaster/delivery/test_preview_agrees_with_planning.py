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
from broadcaster.db.models import Contact
from broadcaster.eligibility import DEFERRED_BY_CAP
from broadcaster.outbox.planner import RECORDED_EXCLUSIONS
from broadcaster.vocabulary import MessageStatus
from consent import ledger
from consent.models import CampaignExclusion
from consent.suppression import suppress
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
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
    """Contacts 1-16; each of 2-16 but 15 is held back (or deferred) on a channel for its own reason."""
    # A mailbox not all ASCII, which the database's lower() may fold otherwise than Python's. The import
    # refuses one (it needs SMTPUTF8); a database may still hold one from before, so it is stored as such.
    stored(pipeline, 15, "ÂN.NGUYỄN@example.vn")
    pipeline.add_contacts(
        [
            *citizens(1),
            citizen(2, phone="0236 3822 002"),  # a Đà Nẵng landline: no SMS
            citizen(3, phone=""),  # no phone
            citizen(4, email=""),  # no e-mail
            *citizens(4, first=5),  # 5 opts out of SMS, 6 suppressed, 7 never agreed, 8 on the register
            citizen(11, full_name=LONG_NAME),  # an SMS of two parts
            *citizens(2, first=12),  # 12 on the campaign's list, 13 capped
            citizen(14, tags="khong-nhan"),  # outside the audience
            # On the second page of ten: an address met on the first.
            citizen(9, email="CONG.DAN1@example.vn"),  # 1's mailbox spelt otherwise
            citizen(10, phone="0912000001"),  # 1's phone
        ]
    )
    stored(pipeline, 16, "ân.nguyễn@example.vn")  # 15's mailbox, on the second page
    with pipeline.context.sessions.begin() as session:
        now = pipeline.clock.now()
        mailboxes = [f"cong.dan{number}@example.vn" for number in range(1, 17)] + ["ân.nguyễn@example.vn"]
        for channel, address in [("sms", phone(n)) for n in range(1, 17)] + [("email", m) for m in mailboxes]:
            if address in (phone(7), mailboxes[6]):
                continue
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


def stored(pipeline: Pipeline, number: int, email: str) -> None:
    """A contact written to the database as it is, not through the import's checks."""
    with pipeline.context.sessions.begin() as session:
        now = pipeline.clock.now()
        session.add(
            Contact(
                external_id=f"DN-{number:06d}",
                full_name=f"Nguyễn Ân {number}",
                phone=phone(number),
                phone_kind="mobile",
                email=email,
                segment="citizen",
                created_at=now,
                updated_at=now,
            )
        )


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


@pytest.mark.parametrize(
    ("samples", "page_size", "database"),
    [(0, 10, "sqlite"), (3, 1000, "sqlite"), pytest.param(0, 10, "postgresql", marks=pytest.mark.services)],
)
def test_the_preview_counts_what_planning_stores(
    make_pipeline: PipelineFactory,
    request: pytest.FixtureRequest,
    samples: int,
    page_size: int,
    database: str,
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    pipeline = make_pipeline(database_url=url, delivery={"plan_page_size": page_size})
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
    assert preview.audience_contacts == 15
    once = [Exclusion.LANDLINE, Exclusion.NO_PHONE, Exclusion.SUPPRESSED, Exclusion.NO_PRIOR_CONSENT]
    once += [Exclusion.DO_NOT_CALL, Exclusion.DUPLICATE, Exclusion.TOO_LONG, Exclusion.CAMPAIGN_LIST]
    assert sms.exclusions == dict.fromkeys(once, 1) | {Exclusion.OPTED_OUT: 2}  # 4 and 5 withdrew
    assert (sms.recipients, sms.deferred) == (5, {DEFERRED_BY_CAP: 1})  # 1, 9, 15, 16 and 13 (capped)
    held_back = dict.fromkeys([Exclusion.NO_EMAIL, Exclusion.SUPPRESSED, Exclusion.NO_PRIOR_CONSENT], 1)
    assert (email.recipients, email.exclusions) == (10, held_back | {Exclusion.DUPLICATE: 2})
    assert [len(item.samples) for item in preview.channels] == [min(samples, 3)] * 2
