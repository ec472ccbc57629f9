"""Cross-channel fallback per person: "Zalo ZNS first, SMS if not delivered within 30 minutes". Only a
delivery signal (the signed ZNS webhook event) stops the SMS; a provider's acceptance does not. The people
whose ZNS message is confirmed in time get no SMS, the others exactly one, and the fallbacks show in the
messages of the run. Against the local ZNS peer and the sandbox SMSC."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from broadcaster.outbox.fallbacks import FALLBACK_FROM_KEY
from broadcaster.vocabulary import MessageStatus
from broadcaster.web.app import create_app
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_social_channel import (
    VARIABLES,
    ZNS_TEXT,
    write_social_templates,
    zalo_provider,
)
from tests.broadcaster.delivery.workdir_files import citizens
from tests.peers.zalo import ZaloBehaviour, ZaloPeer, running_zalo

FALLBACK_CHANNELS = {
    "social": {"template": "social/thu-nghiem", "provider": "zalo_oa", "template_id": "231677"},
    "sms": {"template": "sms/thu-nghiem", "provider": "sms_main", "unaccented": True},
}
FALLBACK = {"from": "social", "to": "sms", "after_minutes": 30}


@pytest.fixture
def zalo() -> Iterator[tuple[ZaloPeer, str]]:
    with running_zalo(ZaloBehaviour()) as running:
        yield running


@pytest.fixture
def fallback_pipeline(make_pipeline: PipelineFactory, zalo: tuple[ZaloPeer, str]) -> Pipeline:
    _peer, url = zalo
    pipeline = make_pipeline(providers={"zalo_oa": zalo_provider(url)})
    write_social_templates(pipeline, text=ZNS_TEXT)
    return pipeline


def sms_destinations(pipeline: Pipeline) -> Counter[str]:
    return Counter("+" + s.destination.lstrip("+") for s in pipeline.smsc.submits)


def test_only_people_whose_zns_is_not_confirmed_in_time_get_one_sms(
    fallback_pipeline: Pipeline, zalo: tuple[ZaloPeer, str]
) -> None:
    peer, _url = zalo
    pipeline = fallback_pipeline
    people = citizens(8)
    pipeline.add_contacts(people)
    campaign_id = pipeline.approved_campaign(
        variables=VARIABLES, channels=FALLBACK_CHANNELS, fallback=FALLBACK
    )

    run_id = pipeline.send(campaign_id)

    zns = pipeline.messages(run_id, channel="social")
    assert Counter(m.status for m in zns) == {
        MessageStatus.SENT: 8
    }  # accepted: not yet a reason to wait less
    waiting = pipeline.messages(run_id, channel="sms")
    assert Counter(m.status for m in waiting) == {MessageStatus.QUEUED: 8}
    assert {m.context[FALLBACK_FROM_KEY] for m in waiting} == {"social"}
    assert {m.not_before for m in waiting} == {pipeline.clock.now() + timedelta(minutes=30)}
    assert sms_destinations(pipeline) == Counter()

    # Five confirmations come back through the webhook before the deadline; three never do.
    with TestClient(create_app(pipeline.context)) as client:
        for webhook in peer.signed[:5]:
            answer = client.post(
                "/webhooks/zalo/zalo_oa", content=webhook.body, headers=dict(webhook.headers)
            )
            assert answer.status_code == 200
    confirmed_phones = {"+" + sent.phone for sent in peer.sent[:5]}

    pipeline.advance(minutes=29)
    pipeline.tick()
    pipeline.drain()
    assert sms_destinations(pipeline) == Counter()  # nobody before the deadline

    pipeline.advance(minutes=2)
    pipeline.tick()
    pipeline.drain()

    everyone = {"+84" + p["phone"][1:] for p in people}
    assert sms_destinations(pipeline) == Counter({phone: 1 for phone in everyone - confirmed_phones})
    fallbacks = Counter(m.status for m in pipeline.messages(run_id, channel="sms"))
    assert fallbacks[MessageStatus.CANCELLED] == 5
    assert fallbacks[MessageStatus.SENT] + fallbacks[MessageStatus.DELIVERED] == 3  # the SMSC's receipts
    # Nothing more goes later: each person gets the notice once.
    pipeline.advance(hours=3)
    pipeline.tick()
    pipeline.drain()
    assert sum(sms_destinations(pipeline).values()) == 3
