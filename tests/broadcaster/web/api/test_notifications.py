"""POST /api/v1/notifications/sms|email: one urgent message from an approved campaign, validated, rendered
with the personalisation, judged by the consent policy, queued on the urgent lane; GET its status."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from broadcaster.context import AppContext
from broadcaster.db.models import AuditEntry, Chunk, Message
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.outbox.single import (
    Created,
    SingleRequest,
    VersionCache,
    approved_version,
    chunk_urgent,
    prepare_single,
    write_singles,
)
from broadcaster.suppressing import suppress_address
from broadcaster.vocabulary import MessageStatus, Role
from tests.broadcaster.web.api.single_messages import enqueuer, single_api, single_key, write_approved
from tests.broadcaster.web.loops import run_alone

__all__ = ["enqueuer", "single_api", "single_key", "write_approved"]  # fixtures used here

SMS = "Ho so {{ message.ma_ho_so }} cua {{ message.ten }} da duoc tiep nhan."
EMAIL_TEXT = "Kính gửi {{ message.ten }},\n\nHồ sơ {{ message.ma_ho_so }} đã được tiếp nhận.\n"
PERSONALISATION = {"ma_ho_so": "HS-2025-0042", "ten": "Lan"}
PHONE = "0905 123 456"


@pytest.fixture
def api(single_api: TestClient) -> TestClient:
    """This module's client: new messages are chunked before the answer (the conftest's ``api`` is the
    other operations')."""
    return single_api


@pytest.fixture
def api_key(single_key: Callable[..., str]) -> Callable[..., str]:
    return single_key


@pytest.fixture
def campaign_id(write_approved: Callable[..., str]) -> str:
    return write_approved(sms_text=SMS, email_text=EMAIL_TEXT, email_subject="Hồ sơ {{ message.ma_ho_so }}")


@pytest.fixture
def key(api_key: Callable[..., str]) -> str:
    return api_key()


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def sms(api: TestClient, key: str, campaign: str, headers: dict[str, str] | None = None, **body: Any) -> Any:
    payload = {"campaign_id": campaign, "phone_number": PHONE, "personalisation": PERSONALISATION, **body}
    return api.post("/api/v1/notifications/sms", json=payload, headers=bearer(key, **(headers or {})))


def message_count(context: AppContext) -> int:
    with context.readers() as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def test_an_sms_is_rendered_queued_on_the_urgent_lane_and_audited(
    api: TestClient, key: str, campaign_id: str, context: AppContext, enqueuer: RecordingEnqueuer
) -> None:
    response = sms(api, key, campaign_id, reference="ho-so-42")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["reference"] == "ho-so-42"
    assert (body["campaign_id"], body["channel"]) == (campaign_id, "sms")
    assert body["content"] == {"body": "Ho so HS-2025-0042 cua Lan da duoc tiep nhan."}
    assert body["uri"] == f"/api/v1/notifications/{body['id']}"
    with context.readers() as session:
        message = session.get(Message, body["id"])
        assert message is not None
        chunk = session.get(Chunk, message.chunk_id)
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "campaign.send_single"))
    assert (message.address, message.run_id, message.purpose) == ("+84905123456", None, "public_information")
    assert chunk is not None
    assert chunk.queue == "send.sms.sms_main.urgent"
    assert enqueuer.chunks == [(chunk.id, "send.sms.sms_main.urgent")]
    assert entry.subject_id == str(body["id"])
    assert entry.actor.startswith("api:")


def test_an_email_carries_its_subject(api: TestClient, key: str, campaign_id: str) -> None:
    response = api.post(
        "/api/v1/notifications/email",
        json={
            "campaign_id": campaign_id,
            "email_address": "Lan@DaNang.gov.vn",
            "personalisation": PERSONALISATION,
        },
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    assert response.json()["content"]["subject"] == "Hồ sơ HS-2025-0042"
    assert "Kính gửi Lan" in response.json()["content"]["body"]


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"personalisation": {"ten": "Lan"}}, "personalisation.ma_ho_so", "missing-personalisation"),
        ({"phone_number": "12345"}, "phone_number", "invalid-address"),
        ({"phone_number": "0236 3822 179"}, "phone_number", "not-mobile"),
        ({"phone_number": ""}, "phone_number", "invalid-request"),
        ({"campaign_id": "khong-co"}, "campaign_id", "unknown-campaign"),
    ],
)
def test_a_refused_request_names_the_field_and_writes_nothing(
    api: TestClient,
    key: str,
    campaign_id: str,
    context: AppContext,
    enqueuer: RecordingEnqueuer,
    change: dict[str, Any],
    field: str,
    code: str,
) -> None:
    response = sms(api, key, campaign_id, **change)

    assert response.status_code in (404, 422), response.text
    problem = response.json()
    assert (problem["field"], problem["type"]) == (field, f"urn:broadcaster:problem:{code}")
    assert message_count(context) == 0
    assert enqueuer.chunks == []


def test_a_suppressed_address_is_recorded_and_not_queued(
    api: TestClient, key: str, campaign_id: str, context: AppContext, enqueuer: RecordingEnqueuer
) -> None:
    with context.sessions.begin() as session:
        suppress_address(
            session,
            channel="sms",
            address="+84905123456",
            reason="test",
            source="manual",
            now=context.clock.now(),
        )
    response = sms(api, key, campaign_id)

    assert response.status_code == 201
    assert response.json()["status"] == MessageStatus.SUPPRESSED.value
    assert response.json()["reason"]
    assert enqueuer.chunks == []


def test_the_same_idempotency_key_creates_one_message(
    api: TestClient, key: str, campaign_id: str, context: AppContext
) -> None:
    first = sms(api, key, campaign_id, headers={"Idempotency-Key": "k-1"})
    again = sms(api, key, campaign_id, headers={"Idempotency-Key": "k-1"})
    other = sms(api, key, campaign_id, reference="khac", headers={"Idempotency-Key": "k-1"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert message_count(context) == 1


def test_keys_see_only_their_campaigns_and_roles(
    api: TestClient, api_key: Callable[..., str], campaign_id: str, context: AppContext
) -> None:
    bound = api_key(campaigns=["chien-dich-khac"])
    auditor = api_key(role=Role.AUDITOR)

    assert sms(api, bound, campaign_id).status_code == 404
    assert sms(api, auditor, campaign_id).status_code == 403
    assert message_count(context) == 0


def test_the_status_shows_the_message_and_masks_for_an_auditor(
    api: TestClient, key: str, api_key: Callable[..., str], campaign_id: str
) -> None:
    created = sms(api, key, campaign_id, reference="ho-so-42").json()

    seen = api.get(created["uri"], headers=bearer(key))
    masked = api.get(created["uri"], headers=bearer(api_key(role=Role.AUDITOR)))
    elsewhere = api.get(created["uri"], headers=bearer(api_key(campaigns=["chien-dich-khac"])))

    assert seen.status_code == 200
    assert (seen.json()["status"], seen.json()["reference"], seen.json()["events"]) == (
        "queued",
        "ho-so-42",
        [],
    )
    assert seen.json()["phone_number"] == "+84905123456"
    assert masked.json()["phone_number"] != "+84905123456"
    assert elsewhere.status_code == 404


def test_a_message_of_a_campaign_run_is_not_an_api_notification(
    api: TestClient, key: str, context: AppContext, campaign_id: str
) -> None:
    with context.sessions.begin() as session:
        message = Message(
            idempotency_key="run:1:sms:+84905000001",
            kind="campaign",
            campaign_id=campaign_id,
            channel="sms",
            provider="sms_main",
            address="+84905000001",
            status=MessageStatus.QUEUED,
            body="x",
            created_at=context.clock.now(),
        )
        session.add(message)
        session.flush()
        message_id = message.id
    assert api.get(f"/api/v1/notifications/{message_id}", headers=bearer(key)).status_code == 404


def test_messages_written_together_go_out_in_one_urgent_chunk(campaign_id: str, context: AppContext) -> None:
    versions = VersionCache(context.settings)
    with context.sessions.begin() as session:
        version, content_hash = approved_version(session, versions, campaign_id)
        requests = [
            SingleRequest(campaign_id, "sms", f"090512345{n}", PERSONALISATION, None, "api:test")
            for n in range(3)
        ]
        written = write_singles(
            session,
            [prepare_single(request, version, content_hash) for request in requests],
            versions=versions,
            settings=context.settings,
            clock=context.clock,
        )
        ids = [created.message_id for created in written if isinstance(created, Created)]
        [(chunk_id, queue)] = chunk_urgent(session, ids, now=context.clock.now())
        assert chunk_urgent(session, ids, now=context.clock.now()) == []  # already chunked: nothing twice

    assert queue == "send.sms.sms_main.urgent"
    with context.readers() as session:
        assert set(session.scalars(select(Message.chunk_id).where(Message.id.in_(ids)))) == {chunk_id}


def test_a_version_approved_after_rendering_is_the_one_written(
    campaign_id: str, context: AppContext, write_approved: Callable[..., str]
) -> None:
    versions = VersionCache(context.settings)
    request = SingleRequest(campaign_id, "sms", PHONE, PERSONALISATION, None, "api:test")
    with context.readers() as session:
        version, content_hash = approved_version(session, versions, campaign_id)
    rendered_before = prepare_single(request, version, content_hash)
    write_approved(sms_text="Moi: " + SMS, email_text=EMAIL_TEXT, email_subject="Hồ sơ")  # a new version

    with context.sessions.begin() as session:
        [created] = write_singles(
            session, [rendered_before], versions=versions, settings=context.settings, clock=context.clock
        )

    assert isinstance(created, Created)
    assert created.text.body.startswith("Moi: ")


def test_concurrent_requests_with_one_idempotency_key_create_one_message(
    single_api: TestClient, key: str, campaign_id: str, context: AppContext
) -> None:
    payload = {"campaign_id": campaign_id, "phone_number": PHONE, "personalisation": PERSONALISATION}
    headers = bearer(key, **{"Idempotency-Key": "k-9"})

    async def together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=single_api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            posts = (
                client.post("/api/v1/notifications/sms", json=payload, headers=headers) for _ in range(5)
            )
            return list(await asyncio.gather(*posts))

    answers = run_alone(together())

    assert [answer.status_code for answer in answers] == [201] * 5
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert sum(answer.headers.get("Idempotent-Replayed") == "true" for answer in answers) == 4
    assert message_count(context) == 1
