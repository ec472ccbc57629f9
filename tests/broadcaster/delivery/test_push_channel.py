"""A push campaign plans one message per registered device, sends through the ``file`` adapter on the push
channel (the engine reaches adapters only through the registry), and forgets the tokens the adapter rejects.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.campaigns.audience import Exclusion
from broadcaster.campaigns.preview import preview_version
from broadcaster.campaigns.store import get_version
from broadcaster.db.models import AuditEntry, Contact, DeviceToken, Message
from broadcaster.devices import Platform, lift_rejection, register_token
from broadcaster.outbox.composition import VersionCache, outbound_message
from broadcaster.outbox.planner import idempotency_key
from broadcaster.subjects.erase import erase
from broadcaster.subjects.export import export
from broadcaster.subjects.held import keyed_hash, parse_subject
from broadcaster.suppressing import audit_subject
from broadcaster.vocabulary import MessageStatus
from broadcaster.web.app import create_app
from broadcaster.web.app_consent_routes import WITHDRAW_PATH
from consent import ledger
from consent.models import Suppression
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_city_app_consent import KEY, signed
from tests.broadcaster.delivery.test_retry_failed import retry
from tests.broadcaster.delivery.workdir_files import EDITOR, citizen, citizens
from tests.broadcaster.test_cli import Cli, one_line

PUSH_TITLE = "{{ org.short_name }}: {{ vars.thu_tuc }}"
PUSH_TEXT = "Kính gửi {{ contact.full_name }}, từ {{ vars.ngay }} thủ tục {{ vars.thu_tuc }} nộp trực tuyến."
PUSH_LINK = "danang://thu-tuc/{{ campaign.id }}"


def token_of(number: int) -> str:
    """An FCM-like registration token (152 characters), unique per ``number``."""
    return f"fcm{number:08d}:APA91b" + "x" * 138


def write_push_templates(pipeline: Pipeline, *, text: str = PUSH_TEXT) -> None:
    folder = pipeline.directory / "templates" / "push"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thu-nghiem.title.j2").write_text(PUSH_TITLE, encoding="utf-8")
    (folder / "thu-nghiem.txt.j2").write_text(text, encoding="utf-8")
    (folder / "thu-nghiem.link.j2").write_text(PUSH_LINK, encoding="utf-8")


def register_devices(pipeline: Pipeline, devices_per_contact: dict[str, int]) -> dict[str, list[str]]:
    """Register ``n`` tokens for each contact (by external id), numbered in order; returns them by contact."""
    registered: dict[str, list[str]] = {}
    number = 0
    with pipeline.context.sessions.begin() as session:
        contacts = {c.external_id: c.id for c in session.scalars(select(Contact))}
        for external_id, count in devices_per_contact.items():
            for _ in range(count):
                token = token_of(number)
                register_token(
                    session,
                    contact_id=contacts[external_id],
                    token=token,
                    platform=Platform.IOS if number % 3 == 0 else Platform.ANDROID,
                    app_version="2.4.1",
                    now=pipeline.clock.now(),
                )
                registered.setdefault(external_id, []).append(token)
                number += 1
    return registered


def push_pipeline(
    make_pipeline: PipelineFactory, tmp_path: Path, reject: list[str], *, database_url: str | None = None
) -> Pipeline:
    return make_pipeline(
        database_url=database_url,
        providers={
            "ung_dung": {
                "channel": "push",
                "type": "file",
                "path": str(tmp_path / "push.jsonl"),
                "reject": reject,
            }
        },
    )


PUSH_CHANNELS = {"push": {"template": "push/thu-nghiem", "provider": "ung_dung"}}


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def test_a_thousand_devices_rejected_tokens_are_forgotten(
    make_pipeline: PipelineFactory, tmp_path: Path, request: pytest.FixtureRequest, database: str
) -> None:
    people = citizens(540)
    # 480 people with two devices and 40 with one: 1,000 tokens; the last 20 people have none.
    devices = {p["external_id"]: 2 for p in people[:480]} | {p["external_id"]: 1 for p in people[480:520]}
    reject = [token_of(n) for n in range(0, 1000, 20)]  # 5 %: every 20th token
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    pipeline = push_pipeline(make_pipeline, tmp_path, reject, database_url=url)
    pipeline.add_contacts(people)
    registered = register_devices(pipeline, devices)
    tokens = {token for found in registered.values() for token in found}
    assert len(tokens) == 1000
    assert len(reject) == 50
    write_push_templates(pipeline)
    campaign_id = pipeline.approved_campaign(channels=PUSH_CHANNELS)

    run_id = pipeline.send(campaign_id)

    messages = pipeline.messages(run_id, channel="push")
    assert Counter(m.status for m in messages) == {
        MessageStatus.SENT: 950,
        MessageStatus.PERMANENT_FAILURE: 50,
        MessageStatus.SUPPRESSED: 20,
    }
    assert {m.reason for m in messages if m.status == MessageStatus.SUPPRESSED} == {Exclusion.NO_DEVICE}
    assert {m.address for m in messages if m.status == MessageStatus.PERMANENT_FAILURE} == set(reject)
    with pipeline.context.readers() as session:
        left = set(session.scalars(select(DeviceToken.token)))
        suppressed = set(session.scalars(select(Suppression.address).where(Suppression.channel == "push")))
    assert left == tokens - set(reject)  # exactly the rejected tokens went
    assert suppressed == set(reject)
    with pipeline.context.readers() as session:
        named = session.scalars(select(AuditEntry.subject_id).where(AuditEntry.action == "suppression.added"))
        # The suppressions' entries name each token by a hash, as the device endpoint's do: never the token.
        assert sorted(named) == sorted(audit_subject("push", token) for token in reject)
    assert all(audit_subject("push", token).startswith("device:") for token in reject)
    # What went on the wire follows the push contract: one line per token, the title as subject, the body.
    lines = [json.loads(line) for line in (tmp_path / "push.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 950
    assert {line["channel"] for line in lines} == {"push"}
    assert {line["to"] for line in lines} == tokens - set(reject)
    assert {line["subject"] for line in lines} == {"SKHCN: cấp đổi giấy phép lái xe"}
    assert all(line["body"].startswith("Kính gửi ") for line in lines)
    sent = next(m for m in messages if m.status == MessageStatus.SENT)
    settings = pipeline.context.settings
    versions = VersionCache(settings)
    with pipeline.context.readers() as session:
        definition = versions.definition(session, sent.version_id or 0)
        outbound = outbound_message(session, sent, definition, {}, versions=versions, settings=settings)
    assert (outbound.address, outbound.subject, outbound.body) == (sent.address, sent.subject, sent.body)
    # The data carries the outbox id the city app acknowledges a shown notification with (docs/social.md).
    assert outbound.options == {
        "link": "danang://thu-tuc/thong-bao-thu-nghiem",
        "data": {"message_id": str(sent.id)},
    }

    # The next campaign targets none of the forgotten tokens; a person whose only device went has none now.
    second = pipeline.approved_campaign(id="thong-bao-lan-hai", channels=PUSH_CHANNELS)
    run_two = pipeline.send(second)
    again = pipeline.messages(run_two, channel="push")
    left_without = sum(1 for found in registered.values() if set(found) <= set(reject))
    assert left_without > 0
    assert {m.address for m in again if m.status == MessageStatus.SENT} == tokens - set(reject)
    assert Counter(m.status for m in again) == {
        MessageStatus.SENT: 950,
        MessageStatus.SUPPRESSED: 20 + left_without,
    }


def test_preview_counts_devices_and_people_without_one(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    pipeline = push_pipeline(make_pipeline, tmp_path, [])
    people = citizens(3)
    pipeline.add_contacts(people)
    register_devices(pipeline, {people[0]["external_id"]: 2, people[1]["external_id"]: 1})
    write_push_templates(pipeline)
    campaign_id = pipeline.load_campaign(pipeline.write_campaign(channels=PUSH_CHANNELS))

    with pipeline.context.sessions.begin() as session:
        version = get_version(session, campaign_id, 1)
        preview = preview_version(session, version, pipeline.context.settings, now=pipeline.clock.now())

    (push,) = preview.channels
    assert (push.channel, push.recipients) == ("push", 3)  # three devices
    assert push.exclusions == {Exclusion.NO_DEVICE: 1}
    assert preview.reached_contacts == 2
    assert push.samples[0]["to"] == token_of(0)
    assert push.samples[0]["link"] == "danang://thu-tuc/thong-bao-thu-nghiem"


def test_a_notification_past_the_limits_for_one_person_is_kept_back(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    pipeline = push_pipeline(make_pipeline, tmp_path, [])
    # The sample contact's name passes validation (8 x 20 characters); a 150-character name does not.
    people = [citizen(1), citizen(2, full_name="Tôn Nữ " + "Thị " * 35 + "An")]
    pipeline.add_contacts(people)
    register_devices(pipeline, {people[0]["external_id"]: 1, people[1]["external_id"]: 1})
    write_push_templates(pipeline, text="{{ (contact.full_name ~ ' ') * 8 }}")
    campaign_id = pipeline.approved_campaign(channels=PUSH_CHANNELS)

    run_id = pipeline.send(campaign_id)

    statuses = {m.address: (m.status, m.reason) for m in pipeline.messages(run_id)}
    assert statuses == {
        token_of(0): (MessageStatus.SENT, None),
        token_of(1): (MessageStatus.SUPPRESSED, Exclusion.PUSH_TOO_LARGE),
    }


def test_a_person_export_lists_their_devices_and_erasure_removes_them(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    pipeline = push_pipeline(make_pipeline, tmp_path, [])
    people = citizens(2)
    pipeline.add_contacts(people)
    register_devices(pipeline, {people[0]["external_id"]: 2, people[1]["external_id"]: 1})
    write_push_templates(pipeline)
    run_id = pipeline.send(pipeline.approved_campaign(channels=PUSH_CHANNELS))
    subject = parse_subject(people[0]["phone"])
    keyed = keyed_hash(pipeline.context.settings.security.erasure_key(), subject)
    with pipeline.context.sessions.begin() as session:
        document = export(session, subject, subject_hash=keyed, actor=ADMIN_LOGIN, now=pipeline.clock.now())
    assert [(d["token"], d["platform"]) for d in document["devices"]] == [
        (token_of(0), "ios"),
        (token_of(1), "android"),
    ]
    assert sorted(m["address"] for m in document["messages"]) == [token_of(0), token_of(1)]

    with pipeline.context.sessions.begin() as session:
        erase(
            session,
            subject,
            reference="HS-2026-031",
            subject_hash=keyed,
            actor=ADMIN_LOGIN,
            now=pipeline.clock.now(),
        )

    with pipeline.context.readers() as session:
        assert set(session.scalars(select(DeviceToken.token))) == {token_of(2)}
    messages = pipeline.messages(run_id)
    assert [m.address for m in messages if m.body] == [token_of(2)]  # the other person's is untouched
    assert all(m.address.startswith("erased:") for m in messages if not m.body)


def test_campaigns_validate_and_preview_on_the_command_line(
    make_pipeline: PipelineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = push_pipeline(make_pipeline, tmp_path, [])
    people = citizens(2)
    pipeline.add_contacts(people)
    register_devices(pipeline, {people[0]["external_id"]: 1})
    write_push_templates(pipeline)
    path = pipeline.write_campaign(channels=PUSH_CHANNELS)
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    cli = Cli(monkeypatch)
    cli("campaigns", "load", str(path), user=EDITOR)

    shown = one_line(cli("campaigns", "preview", "thong-bao-thu-nghiem").stdout)

    assert "Recipients: 1" in shown
    assert "excluded: 1 — no device registered for push" in shown
    assert f"→ {token_of(0)}" in shown
    assert "Title: SKHCN: cấp đổi giấy phép lái xe" in shown
    assert "Link: danang://thu-tuc/thong-bao-thu-nghiem" in shown

    (pipeline.directory / "templates" / "push" / "thu-nghiem.link.j2").write_text(
        "https://dichvucong.danang.gov.vn/?q={{ 'x' * 4000 }}", encoding="utf-8"
    )
    result = cli("campaigns", "validate", str(path), expect=1)
    refused = one_line(result.stdout + result.stderr)
    assert "thu-nghiem.txt.j2" in refused
    assert "more than FCM's 4096" in refused


def test_retrying_the_failed_sends_to_the_failed_device_only(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    people = citizens(2)
    pipeline = push_pipeline(make_pipeline, tmp_path, [token_of(1)])
    pipeline.add_contacts(people)
    registered = register_devices(pipeline, {people[0]["external_id"]: 2, people[1]["external_id"]: 1})
    write_push_templates(pipeline)
    campaign_id = pipeline.approved_campaign(channels=PUSH_CHANNELS)
    first = pipeline.send(campaign_id)
    assert {m.address: m.status for m in pipeline.messages(first)} == {
        token_of(0): MessageStatus.SENT,
        token_of(1): MessageStatus.PERMANENT_FAILURE,
        token_of(2): MessageStatus.SENT,
    }

    # The rejected token is gone: a retry has nothing to send, and the person's other device gets no copy.
    nothing = retry(pipeline, campaign_id, first)
    assert pipeline.messages(nothing.run_id) == []

    # The app registers that token again: a retry goes to it alone (and the adapter, still refusing it, fails it).
    with pipeline.context.sessions.begin() as session:
        register_token(session, contact_id=_contact_id(pipeline, people[0]), token=token_of(1),
                       platform=Platform.ANDROID, app_version="2.5.0", now=pipeline.clock.now())  # fmt: skip
        lift_rejection(session, token=token_of(1))
    again = retry(pipeline, campaign_id, first)
    assert [(m.address, m.status) for m in pipeline.messages(again.run_id)] == [
        (token_of(1), MessageStatus.PERMANENT_FAILURE)
    ]
    assert registered[people[0]["external_id"]] == [token_of(0), token_of(1)]


def _contact_id(pipeline: Pipeline, person: dict[str, str]) -> int:
    with pipeline.context.readers() as session:
        found = session.scalar(select(Contact.id).where(Contact.external_id == person["external_id"]))
    assert found is not None
    return found


def test_idempotency_keys_are_unique_per_run_contact_and_device_and_fit_their_column() -> None:
    longest = "t" * 320
    keys = {
        idempotency_key(run, "push", token, contact_id=contact)
        for run in (1, 2)
        for contact in (7, 8)
        for token in (token_of(0), token_of(1), longest, None)
    }
    assert len(keys) == 2 * 2 * 4
    column = Message.__table__.c.idempotency_key.type.length  # type: ignore[attr-defined]
    assert max(len(key) for key in keys) <= column
    assert idempotency_key(1, "email", "A@Example.vn") == idempotency_key(1, "email", "a@example.vn")


def test_a_test_send_reaches_one_device_and_a_bad_token_is_named(
    make_pipeline: PipelineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = push_pipeline(make_pipeline, tmp_path, [])
    write_push_templates(pipeline)
    campaign_id = pipeline.approved_campaign(channels=PUSH_CHANNELS)
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    cli = Cli(monkeypatch)

    result = cli("campaigns", "test-send", campaign_id, "--to", f"push:{token_of(9)}", user=EDITOR)

    assert "sent" in result.stdout
    (line,) = [
        json.loads(text) for text in (tmp_path / "push.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert (line["to"], line["subject"]) == (token_of(9), "[TEST] SKHCN: cấp đổi giấy phép lái xe")
    assert line["body"] == PUSH_TEXT.replace("{{ contact.full_name }}", "Nguyễn Thị Minh Anh").replace(
        "{{ vars.ngay }}", "01/07/2025"
    ).replace("{{ vars.thu_tuc }}", "cấp đổi giấy phép lái xe")
    (message,) = pipeline.messages()
    assert message.context == {"link": "danang://thu-tuc/thong-bao-thu-nghiem"}

    refused = cli("campaigns", "test-send", campaign_id, "--to", "push:ngắn", user=EDITOR, expect=1)
    assert "not a device token" in one_line(refused.stdout + refused.stderr)
    email_refused = cli("campaigns", "test-send", campaign_id, "--to", "a@example.vn", user=EDITOR, expect=1)
    assert "has no email channel" in one_line(email_refused.stdout + email_refused.stderr)


def test_consent_is_judged_per_person_for_all_their_devices(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    """A withdrawal on push, recorded under the person's phone number, keeps every device of theirs out at
    planning; one recorded after planning stops them at sending (the check right before each window)."""
    pipeline = push_pipeline(make_pipeline, tmp_path, [])
    people = citizens(3)
    pipeline.add_contacts(people)
    register_devices(pipeline, {p["external_id"]: 2 for p in people})  # tokens 0-1, 2-3, 4-5
    write_push_templates(pipeline)
    campaign_id = pipeline.approved_campaign(channels=PUSH_CHANNELS)
    with pipeline.context.sessions.begin() as session:
        withdraw_push(session, pipeline, "+84912000001")

    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    planned = {m.address: (m.status, m.reason, m.address_key) for m in pipeline.messages(run_id)}
    assert (
        planned[token_of(0)]
        == planned[token_of(1)]
        == (
            MessageStatus.SUPPRESSED,
            Exclusion.OPTED_OUT,
            "+84912000001",
        )
    )
    assert {planned[token_of(n)][0] for n in (2, 3, 4, 5)} == {MessageStatus.QUEUED}
    assert planned[token_of(2)][2] == "+84912000002"  # every device's message carries its person

    with pipeline.context.sessions.begin() as session:
        withdraw_push(session, pipeline, "+84912000002")  # after planning: the ledger alone, nothing stopped
    pipeline.drain()

    sent = {m.address: (m.status, m.reason) for m in pipeline.messages(run_id)}
    assert sent[token_of(2)] == sent[token_of(3)] == (MessageStatus.SUPPRESSED, Exclusion.OPTED_OUT)
    assert {sent[token_of(n)][0] for n in (4, 5)} == {MessageStatus.SENT}


def withdraw_push(session: Session, pipeline: Pipeline, phone: str) -> None:
    ledger.withdraw(
        session,
        channel="push",
        address=phone,
        purpose="public_information",
        source="city_app",
        recorded_by="city app",
        at=pipeline.clock.now(),
    )


def test_the_city_app_withdraws_push_for_a_person_and_their_queued_notifications_stop(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    pipeline = push_pipeline(make_pipeline, tmp_path, [])
    pipeline.context.settings.security.city_app_key = KEY
    people = citizens(2)
    pipeline.add_contacts(people)
    register_devices(pipeline, {p["external_id"]: 2 for p in people})
    write_push_templates(pipeline)
    run_id = pipeline.start_run(pipeline.approved_campaign(channels=PUSH_CHANNELS))
    pipeline.plan(run_id)
    payload = {"nonce": "nonce-push-000000001", "channel": "push", "address": "0912 000 001"}

    raw, headers = signed(pipeline, payload)
    with TestClient(create_app(pipeline.context)) as client:
        response = client.post(WITHDRAW_PATH, content=raw, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["stopped_messages"] == 2  # both devices of the person
    with pipeline.context.readers() as session:
        assert ledger.current(session, "push", "+84912000001", "public_information") is False
        assert ledger.current(session, "sms", "+84912000001", "public_information") is None  # push only
    statuses = {m.address: m.status for m in pipeline.messages(run_id)}
    assert [statuses[token_of(n)] for n in range(4)] == [
        MessageStatus.SUPPRESSED,
        MessageStatus.SUPPRESSED,
        MessageStatus.QUEUED,
        MessageStatus.QUEUED,
    ]


def test_staff_withdraw_push_for_a_person_on_the_command_line(
    make_pipeline: PipelineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = push_pipeline(make_pipeline, tmp_path, [])
    people = citizens(1)
    pipeline.add_contacts(people)
    register_devices(pipeline, {people[0]["external_id"]: 2})
    write_push_templates(pipeline)
    run_id = pipeline.start_run(pipeline.approved_campaign(channels=PUSH_CHANNELS))
    pipeline.plan(run_id)
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    cli = Cli(monkeypatch)

    cli("consent", "withdraw", "0912 000 001", "--channel", "push", "--purpose", "public_information",
        "--reason", "Gọi tổng đài 1022")  # fmt: skip

    with pipeline.context.readers() as session:
        assert ledger.current(session, "push", "+84912000001", "public_information") is False
    assert {m.status for m in pipeline.messages(run_id)} == {MessageStatus.SUPPRESSED}
