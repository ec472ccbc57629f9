"""``POST /webhooks/zalo/{provider}``: the signed ``user_received_message`` events the ZNS peer writes are
stored as inbound records of the social channel and mark their messages delivered; an unsigned or badly
signed request gets 401 and stores nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from broadcaster.db.models import InboundRecord
from broadcaster.vocabulary import MessageStatus
from broadcaster.web.app import create_app
from channels.sandbox.zalo import ZaloBehaviour, ZaloPeer, running_zalo
from tests.broadcaster.conftest import database_dump
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_social_channel import (
    VARIABLES,
    ZNS_TEXT,
    write_social_templates,
    zalo_provider,
)
from tests.broadcaster.delivery.workdir_files import citizens

ZNS_CHANNELS = {"social": {"template": "social/thu-nghiem", "provider": "zalo_oa", "template_id": "231677"}}


@pytest.fixture
def zalo() -> Iterator[tuple[ZaloPeer, str]]:
    with running_zalo(ZaloBehaviour()) as running:
        yield running


@pytest.fixture
def zns_pipeline(make_pipeline: PipelineFactory, zalo: tuple[ZaloPeer, str]) -> Pipeline:
    _peer, url = zalo
    pipeline = make_pipeline(providers={"zalo_oa": zalo_provider(url)})
    write_social_templates(pipeline, text=ZNS_TEXT)
    return pipeline


@pytest.fixture
def client(zns_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(zns_pipeline.context)) as client:
        yield client


def stored_records(pipeline: Pipeline) -> int:
    with pipeline.context.readers() as session:
        return int(session.scalar(select(func.count()).select_from(InboundRecord)) or 0)


def test_signed_deliveries_are_stored_and_mark_their_messages_delivered(
    zns_pipeline: Pipeline, client: TestClient, zalo: tuple[ZaloPeer, str]
) -> None:
    peer, _url = zalo
    zns_pipeline.add_contacts(citizens(5))
    campaign_id = zns_pipeline.approved_campaign(variables=VARIABLES, channels=ZNS_CHANNELS)
    run_id = zns_pipeline.send(campaign_id)
    sent = peer.sent
    assert len(sent) == 5
    assert len(peer.signed) == 5  # the peer writes one signed delivery event per message it takes

    for webhook in peer.signed[:3]:
        answer = client.post("/webhooks/zalo/zalo_oa", content=webhook.body, headers=dict(webhook.headers))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "stored"}

    assert stored_records(zns_pipeline) == 3
    delivered = {sent[i].msg_id for i in range(3)}
    statuses = {m.provider_ref: m.status for m in zns_pipeline.messages(run_id, channel="social")}
    assert {ref for ref, status in statuses.items() if status == MessageStatus.DELIVERED} == delivered
    assert {status for ref, status in statuses.items() if ref not in delivered} == {MessageStatus.SENT}


def test_an_unsigned_or_badly_signed_webhook_gets_401_and_stores_nothing(
    zns_pipeline: Pipeline, client: TestClient, zalo: tuple[ZaloPeer, str]
) -> None:
    peer, _url = zalo
    event = peer.deliver("a1b2c3")
    webhook = peer.signed[-1]
    before = database_dump(zns_pipeline.context.engine)

    unsigned = client.post("/webhooks/zalo/zalo_oa", content=webhook.body)
    forged = client.post(
        "/webhooks/zalo/zalo_oa", content=webhook.body, headers={"X-ZEvent-Signature": "0" * 64}
    )
    altered = client.post(
        "/webhooks/zalo/zalo_oa",
        content=webhook.body.replace(b"a1b2c3", b"a1b2c4"),
        headers=dict(webhook.headers),
    )

    assert [r.status_code for r in (unsigned, forged, altered)] == [401, 401, 401]
    assert database_dump(zns_pipeline.context.engine) == before
    assert event["message"]["msg_id"] == "a1b2c3"


def test_only_a_configured_provider_of_a_webhook_type_has_the_route(
    zns_pipeline: Pipeline, client: TestClient, zalo: tuple[ZaloPeer, str]
) -> None:
    peer, _url = zalo
    peer.deliver("a1b2c3")
    webhook = peer.signed[-1]
    for path in ("/webhooks/zalo/nobody", "/webhooks/smpp/zalo_oa", "/webhooks/facebook/zalo_oa"):
        answer = client.post(path, content=webhook.body, headers=dict(webhook.headers))
        assert answer.status_code == 404, path
    assert stored_records(zns_pipeline) == 0
