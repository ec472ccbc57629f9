"""The city app's signed device endpoint: a request signed by the app's backend registers, refreshes or removes
a person's push token, with an audit entry; anything unsigned, forged, stale, replayed or malformed gets a 4xx
problem detail and changes nothing (the whole database compared before and after)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from broadcaster.db.models import AuditEntry, Contact, DeviceToken
from broadcaster.web.app import create_app
from broadcaster.web.app_device_routes import DEVICES_PATH
from broadcaster.web.signed_requests import SIGNATURE_HEADER, TIMESTAMP_HEADER
from consent.suppression import suppress, suppressed_among
from tests.broadcaster.conftest import database_dump
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_city_app_consent import KEY, PHONE, WINDOW, assert_problem, signed
from tests.broadcaster.delivery.workdir_files import citizen, citizens

PUSH_DOC = Path(__file__).resolve().parents[3] / "docs" / "push.md"
TOKEN = "dGVzdC10b2tlbi0x:APA91bH" + "k" * 140
E164 = "+84912000001"


@pytest.fixture
def app_pipeline(pipeline: Pipeline) -> Pipeline:
    pipeline.context.settings.security.city_app_key = KEY
    pipeline.add_contacts(citizens(2))
    return pipeline


@pytest.fixture
def client(app_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(app_pipeline.context)) as client:
        yield client


def register(nonce: str = "nonce-0000000000000001", **fields: Any) -> dict[str, Any]:
    return {
        "nonce": nonce,
        "action": "register",
        "channel": "sms",
        "address": PHONE,
        "token": TOKEN,
        "platform": "android",
        "app_version": "2.4.1",
        **fields,
    }


def remove(nonce: str = "nonce-0000000000000009", **fields: Any) -> dict[str, Any]:
    return {"nonce": nonce, "action": "remove", "channel": "sms", "address": PHONE, "token": TOKEN, **fields}


def post(client: TestClient, raw: bytes, headers: dict[str, str]) -> Response:
    response: Response = client.post(DEVICES_PATH, content=raw, headers=headers)
    return response


def devices(pipeline: Pipeline) -> list[tuple[str | None, str, str, str | None]]:
    """(contact's phone, token, platform, app version) of every registered device."""
    with pipeline.context.readers() as session:
        rows = session.execute(
            select(Contact.phone, DeviceToken.token, DeviceToken.platform, DeviceToken.app_version)
            .join(Contact, Contact.id == DeviceToken.contact_id)
            .order_by(DeviceToken.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def device_audit(pipeline: Pipeline) -> list[AuditEntry]:
    with pipeline.context.readers() as session:
        query = select(AuditEntry).where(AuditEntry.action.like("device.%")).order_by(AuditEntry.id)
        return list(session.scalars(query))


def test_a_signed_registration_stores_the_device_and_audits_it(
    app_pipeline: Pipeline, client: TestClient
) -> None:
    response = post(client, *signed(app_pipeline, register()))

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "created"}
    assert devices(app_pipeline) == [(E164, TOKEN, "android", "2.4.1")]
    (entry,) = device_audit(app_pipeline)
    assert (entry.actor, entry.action, entry.subject_type) == ("city app", "device.register", "contact")
    details = json.loads(entry.details) if isinstance(entry.details, str) else entry.details
    assert details["device_sha256"] == hashlib.sha256(TOKEN.encode()).hexdigest()[:16]
    assert details["nonce"] == "nonce-0000000000000001"
    assert TOKEN not in json.dumps(details)
    assert E164 not in json.dumps(details)


def test_registering_again_refreshes_and_another_person_takes_the_token(
    app_pipeline: Pipeline, client: TestClient
) -> None:
    assert post(client, *signed(app_pipeline, register())).status_code == 200
    app_pipeline.advance(hours=1)

    again = post(
        client, *signed(app_pipeline, register("nonce-0000000000000002", platform="ios", app_version="2.5.0"))
    )
    assert again.json() == {"status": "refreshed"}
    assert devices(app_pipeline) == [(E164, TOKEN, "ios", "2.5.0")]

    moved = post(client, *signed(app_pipeline, register("nonce-0000000000000003", address="0912000002")))
    assert moved.json() == {"status": "moved"}
    assert devices(app_pipeline) == [("+84912000002", TOKEN, "android", "2.4.1")]


def test_several_devices_per_person_and_removal(app_pipeline: Pipeline, client: TestClient) -> None:
    other = "f" * 64  # an APNs device token
    assert post(client, *signed(app_pipeline, register())).status_code == 200
    second = register("nonce-0000000000000002", token=other, platform="ios")
    assert post(client, *signed(app_pipeline, second)).status_code == 200
    assert [d[1] for d in devices(app_pipeline)] == [TOKEN, other]

    removed = post(client, *signed(app_pipeline, remove()))
    assert removed.json() == {"status": "removed"}
    assert [d[1] for d in devices(app_pipeline)] == [other]
    again = post(client, *signed(app_pipeline, remove("nonce-0000000000000010")))
    assert again.json() == {"status": "not_registered"}
    assert [e.action for e in device_audit(app_pipeline)] == [
        "device.register",
        "device.register",
        "device.remove",
        "device.remove",
    ]


def test_an_email_identifies_the_person_too(app_pipeline: Pipeline, client: TestClient) -> None:
    payload = register(channel="email", address=" Cong.Dan1@EXAMPLE.vn ")

    assert post(client, *signed(app_pipeline, payload)).status_code == 200

    assert devices(app_pipeline) == [(E164, TOKEN, "android", "2.4.1")]


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key != name}


@pytest.mark.parametrize(
    ("payload", "signing", "tamper", "status", "code", "field"),
    [
        pytest.param(
            register(),
            {},
            lambda raw, h: (raw, {"Content-Type": "application/json"}),
            401,
            "unsigned",
            None,
            id="unsigned",
        ),
        pytest.param(
            register(),
            {},
            lambda raw, h: (raw, _without(h, SIGNATURE_HEADER)),
            401,
            "unsigned",
            None,
            id="no-signature",
        ),
        pytest.param(register(), {"key": "khoa-khac"}, None, 401, "bad-signature", None, id="wrong-key"),
        pytest.param(
            register(),
            {},
            lambda raw, h: (raw.replace(b"android", b"ios"), h),
            401,
            "bad-signature",
            None,
            id="body-changed",
        ),
        pytest.param(
            register(),
            {},
            lambda raw, h: (raw, {**h, TIMESTAMP_HEADER: "soon"}),
            401,
            "bad-timestamp",
            None,
            id="bad-timestamp",
        ),
        pytest.param(register(), {"skew": -WINDOW - 1}, None, 401, "stale-timestamp", None, id="stale"),
        pytest.param(register(token="short"), {}, None, 422, "bad-token", "token", id="bad-token"),
        pytest.param(register(token="a b" * 10), {}, None, 422, "bad-token", "token", id="token-with-spaces"),
        pytest.param(register(token="a" * 321), {}, None, 422, "bad-token", "token", id="token-too-long"),
        pytest.param(register(platform=None), {}, None, 422, "missing-field", "platform", id="no-platform"),
        pytest.param(
            register(platform="symbian"), {}, None, 422, "bad-platform", "platform", id="bad-platform"
        ),
        pytest.param(register(action="grant"), {}, None, 422, "bad-action", "action", id="bad-action"),
        pytest.param(
            register(app_version="2.4 beta"),
            {},
            None,
            422,
            "bad-app-version",
            "app_version",
            id="bad-version",
        ),
        pytest.param(register(extra=True), {}, None, 422, "unknown-field", "extra", id="unknown-field"),
        pytest.param(
            register(address="0912 999 999"), {}, None, 422, "unknown-person", "address", id="unknown-person"
        ),
        pytest.param(
            register(address="not a phone"), {}, None, 422, "bad-address", "address", id="bad-address"
        ),
        pytest.param(
            {k: v for k, v in register().items() if k != "token"},
            {},
            None,
            422,
            "missing-field",
            "token",
            id="no-token",
        ),
        pytest.param(b"{not json", {}, None, 400, "bad-json", None, id="not-json"),
        pytest.param(b"x" * (4 * 1024 + 1), {}, None, 413, "too-large", None, id="too-large"),
    ],
)
def test_a_refused_request_changes_nothing(
    app_pipeline: Pipeline,
    client: TestClient,
    payload: dict[str, Any] | bytes,
    signing: dict[str, Any],
    tamper: Any,
    status: int,
    code: str,
    field: str | None,
) -> None:
    before = database_dump(app_pipeline.context.engine)
    raw, headers = signed(app_pipeline, payload, **signing)
    if tamper is not None:
        raw, headers = tamper(raw, headers)

    response = post(client, raw, headers)

    assert_problem(response, status, code, field)
    assert database_dump(app_pipeline.context.engine) == before


def test_a_replayed_nonce_is_refused_and_changes_nothing(app_pipeline: Pipeline, client: TestClient) -> None:
    assert post(client, *signed(app_pipeline, register())).status_code == 200
    before = database_dump(app_pipeline.context.engine)

    response = post(client, *signed(app_pipeline, remove("nonce-0000000000000001")))

    assert_problem(response, 409, "replayed", "nonce")
    assert database_dump(app_pipeline.context.engine) == before


def test_without_a_shared_key_every_request_is_refused(app_pipeline: Pipeline, client: TestClient) -> None:
    app_pipeline.context.settings.security.city_app_key = ""

    assert_problem(post(client, *signed(app_pipeline, register())), 403, "not-configured")
    assert devices(app_pipeline) == []


def test_the_documented_example_signs_a_request_the_server_accepts(
    app_pipeline: Pipeline, client: TestClient
) -> None:
    section = (
        PUSH_DOC.read_text(encoding="utf-8").split("### Registration endpoint", 1)[1].split("\n### ", 1)[0]
    )
    (block,) = re.findall(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(block, namespace)  # noqa: S102  the project's own documentation
    app_pipeline.clock.set(datetime.now(UTC))  # the example signs with the real time, as the app does
    app_pipeline.add_contacts([citizen(3, phone="0905123456")])
    (payload,) = re.findall(r"^```json\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    fields = {key: value for key, value in json.loads(payload).items() if key != "nonce"}

    response = post(client, *namespace["signed_device_request"](KEY, fields))

    assert response.json() == {"status": "created"}
    assert [(phone, platform) for phone, _token, platform, _version in devices(app_pipeline)] == [
        ("+84905123456", "android")
    ]


def test_registering_a_token_a_provider_rejected_lifts_its_suppression(
    app_pipeline: Pipeline, client: TestClient
) -> None:
    with app_pipeline.context.sessions.begin() as session:
        suppress(session, channel="push", address=TOKEN, reason="unregistered", source="fcm:UNREGISTERED",
                 at=app_pipeline.clock.now())  # fmt: skip

    assert post(client, *signed(app_pipeline, register())).json() == {"status": "created"}

    with app_pipeline.context.readers() as session:
        assert suppressed_among(session, channel="push", addresses=[TOKEN]) == set()
    (entry,) = device_audit(app_pipeline)
    details = json.loads(entry.details) if isinstance(entry.details, str) else entry.details
    assert details["rejection_lifted"] is True


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def test_concurrent_registrations_of_one_token_leave_one_device(
    make_pipeline: PipelineFactory, request: pytest.FixtureRequest, database: str
) -> None:
    """The app retrying a registration with new nonces while the first is in flight: all answered 200, one row."""
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    pipeline = make_pipeline(database_url=url)
    pipeline.context.settings.security.city_app_key = KEY
    pipeline.add_contacts(citizens(1))
    copies = 6
    requests = [signed(pipeline, register(f"nonce-concurrent-{n:06d}")) for n in range(copies)]
    start = threading.Barrier(copies)
    answers: list[str] = []
    with TestClient(create_app(pipeline.context)) as client:

        def send(raw: bytes, headers: dict[str, str]) -> None:
            start.wait()
            answers.append(post(client, raw, headers).json()["status"])

        threads = [threading.Thread(target=send, args=pair) for pair in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(answers) == ["created"] + ["refreshed"] * (copies - 1)
    assert devices(pipeline) == [(E164, TOKEN, "android", "2.4.1")]
