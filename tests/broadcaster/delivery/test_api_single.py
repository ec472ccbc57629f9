"""A single urgent SMS sent through the REST API goes out through the real dispatcher to the sandbox SMSC on
the provider's urgent queue, and its receipt makes it delivered: GET /api/v1/notifications/{id} says so."""

from __future__ import annotations

from fastapi.testclient import TestClient

from broadcaster.api_keys import create_key
from broadcaster.db.models import Message
from broadcaster.vocabulary import Role
from broadcaster.web.app import create_app
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.web.api.single_messages import api_app
from tests.peers.polling import wait_until

SMS = "Ho so {{ message.ma_ho_so }} da duoc tiep nhan. {{ org.short_name }}"


def test_an_api_sms_reaches_the_smsc_and_becomes_delivered(pipeline: Pipeline) -> None:
    campaign_id = pipeline.approved_campaign(
        channels={"sms": {"template": "sms/thu-nghiem", "provider": "sms_main", "unaccented": True}},
        sms_text=SMS,
    )
    with pipeline.context.sessions.begin() as session:
        secret = create_key(
            session,
            actor=ADMIN_LOGIN,
            name="he-thong-mot-cua",
            role=Role.EDITOR,
            clock=pipeline.clock,
            rate_per_minute=60,
            campaigns=[campaign_id],
        ).secret
    app = create_app(pipeline.context)
    api_app(app).state.enqueuer = pipeline.enqueuer
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(app) as client:
        created = client.post(
            "/api/v1/notifications/sms",
            json={
                "campaign_id": campaign_id,
                "phone_number": "0905123456",
                "personalisation": {"ma_ho_so": "HS-7"},
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        # The chunker's thread cuts the chunk and enqueues it on the urgent lane.
        wait_until(lambda: pipeline.enqueuer.chunks, timeout=10, interval=0.01, what="the urgent chunk")
        [(_chunk, queue)] = pipeline.enqueuer.chunks
        assert queue == "send.sms.sms_main.urgent"

        pipeline.drain()  # what the urgent queue's worker does with the chunk

        assert pipeline.smsc.wait_until(lambda smsc: len(smsc.accepted) == 1)
        [submit] = pipeline.smsc.accepted
        assert submit.destination.endswith("905123456")
        assert "Ho so HS-7 da duoc tiep nhan." in submit.text

        def delivered() -> Message | None:
            pipeline.advance(seconds=5)
            pipeline.tick()
            [message] = pipeline.messages()
            return message if message.status.value == "delivered" else None

        wait_until(delivered, timeout=20, interval=0.05, what="the API message delivered")
        status = client.get(created.json()["uri"], headers=headers).json()
    assert status["status"] == "delivered"
    assert status["events"], "the receipt is listed"
