"""Cross-channel fallback per person: "Zalo ZNS first, SMS if not delivered within 30 minutes". Only a
delivery signal (the signed ZNS webhook event) stops the SMS; a provider's acceptance does not. The people
whose ZNS message is confirmed in time get no SMS, the others exactly one, and the fallbacks show in the
messages of the run. Against the local ZNS peer and the sandbox SMSC."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from broadcaster.db.models import RollupDay
from broadcaster.outbox.fallbacks import FALLBACK_FROM_KEY
from broadcaster.outbox.inbound import inbound_batch_handler
from broadcaster.reporting.labels import reason_label
from broadcaster.reporting.rollups import rebuild
from broadcaster.status import run_counts
from broadcaster.vocabulary import MessageStatus
from broadcaster.web.app import create_app
from broadcaster.web.app_push_ack_routes import PUSH_SHOWN_PATH
from channels.sandbox.zalo import ZaloBehaviour, ZaloPeer, running_zalo
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_city_app_consent import KEY, signed
from tests.broadcaster.delivery.test_push_channel import (
    PUSH_CHANNELS,
    push_pipeline,
    register_devices,
    write_push_templates,
)
from tests.broadcaster.delivery.test_social_channel import (
    VARIABLES,
    ZNS_TEXT,
    load_problems,
    write_social_templates,
    zalo_provider,
)
from tests.broadcaster.delivery.workdir_files import citizens

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
    # The run's status counts them by channel: the SMS fallbacks cancelled apart from those sent.
    with pipeline.context.readers() as session:
        counts = run_counts(session, run_id)
    assert counts["sms"]["cancelled"] == 5
    assert counts["social"] == {"sent": 3, "delivered": 5}
    # The reports count the fallbacks that were not needed, with their reason, as kept back.
    settings = pipeline.context.settings
    day = pipeline.clock.now().astimezone(ZoneInfo(settings.timezone)).date()
    with pipeline.context.sessions.begin() as session:
        rebuild(session, settings, start=day, end=day, clock=pipeline.clock)
        kept_back = session.execute(
            select(RollupDay.channel, RollupDay.reason, RollupDay.messages).where(
                RollupDay.status == "cancelled"
            )
        ).all()
    [(channel, reason, count)] = kept_back
    assert (channel, count) == ("sms", 5)
    assert reason_label(reason) == "không cần tin dự phòng: tin trên kênh trước đã đến người nhận"


def test_a_primary_that_fails_for_good_lets_its_fallback_go_at_once(
    make_pipeline: PipelineFactory,
) -> None:
    people = citizens(4)
    # Two have no Zalo account (-118): their ZNS message fails for good, so their SMS need not wait.
    behaviour = ZaloBehaviour(not_on_zalo=frozenset({"84912000001", "84912000002"}))
    with running_zalo(behaviour) as (_peer, url):
        pipeline = make_pipeline(providers={"zalo_oa": zalo_provider(url)})
        write_social_templates(pipeline, text=ZNS_TEXT)
        pipeline.add_contacts(people)
        campaign_id = pipeline.approved_campaign(
            variables=VARIABLES, channels=FALLBACK_CHANNELS, fallback=FALLBACK
        )
        run_id = pipeline.send(campaign_id)
        pipeline.tick()
        pipeline.drain()

    zns = Counter(m.status for m in pipeline.messages(run_id, channel="social"))
    assert zns == {MessageStatus.SENT: 2, MessageStatus.PERMANENT_FAILURE: 2}
    assert sms_destinations(pipeline) == Counter({"+84912000001": 1, "+84912000002": 1})
    waiting = [m for m in pipeline.messages(run_id, channel="sms") if m.status == MessageStatus.QUEUED]
    assert {m.address for m in waiting} == {"+84912000003", "+84912000004"}


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def test_a_confirmation_applied_exactly_at_the_deadline_never_lets_a_person_get_both(
    make_pipeline: PipelineFactory,
    zalo: tuple[ZaloPeer, str],
    request: pytest.FixtureRequest,
    database: str,
) -> None:
    peer, url = zalo
    database_url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    pipeline = make_pipeline(providers={"zalo_oa": zalo_provider(url)}, database_url=database_url)
    write_social_templates(pipeline, text=ZNS_TEXT)
    people = citizens(40)
    pipeline.add_contacts(people)
    campaign_id = pipeline.approved_campaign(
        variables=VARIABLES, channels=FALLBACK_CHANNELS, fallback=FALLBACK
    )
    run_id = pipeline.send(campaign_id)
    assert len(peer.signed) == 40
    store = inbound_batch_handler(
        pipeline.context.sessions, provider="zalo_oa", channel="social", clock=pipeline.clock
    )
    pipeline.advance(minutes=30)  # exactly the deadline: every fallback is due now
    pipeline.tick()
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def send_fallbacks() -> None:
        start.wait()
        pipeline.drain()

    def confirm_all() -> None:
        start.wait()
        # One transaction per event, last person first while the fallbacks are claimed first person first:
        # the two meet somewhere in the middle.
        for webhook in reversed(peer.signed):
            store([json.loads(webhook.body)])

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t)) for t in (send_fallbacks, confirm_all)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    pipeline.tick()
    pipeline.drain()

    zns = pipeline.messages(run_id, channel="social")
    assert {m.status for m in zns} == {MessageStatus.DELIVERED}
    fallbacks = {m.address: m for m in pipeline.messages(run_id, channel="sms")}
    assert len(fallbacks) == 40
    sent = sms_destinations(pipeline)
    for phone, message in fallbacks.items():
        if message.status == MessageStatus.CANCELLED:
            assert sent[phone] == 0, (phone, message.status)  # cancelled: never written to the SMSC
        else:
            assert message.status in (MessageStatus.SENT, MessageStatus.DELIVERED), (phone, message.status)
            assert message.handed_at is not None
            assert sent[phone] == 1  # handed over before the confirmation: exactly one SMS
    assert sum(sent.values()) == sum(1 for m in fallbacks.values() if m.status != MessageStatus.CANCELLED)


def test_push_then_sms_the_city_apps_acknowledgement_is_the_delivery_signal(
    make_pipeline: PipelineFactory, tmp_path: Path
) -> None:
    pipeline = push_pipeline(make_pipeline, tmp_path, reject=[])
    pipeline.context.settings.security.city_app_key = KEY
    people = citizens(6)
    pipeline.add_contacts(people)
    registered = register_devices(pipeline, {p["external_id"]: 1 for p in people})
    write_push_templates(pipeline)
    campaign_id = pipeline.approved_campaign(
        channels={**PUSH_CHANNELS, "sms": FALLBACK_CHANNELS["sms"]},
        fallback={"from": "push", "to": "sms", "after_minutes": 15},
    )
    run_id = pipeline.send(campaign_id)
    lines = [json.loads(line) for line in (tmp_path / "push.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 6
    shown = [p["external_id"] for p in people[:4]]  # four notifications are shown, two never are
    by_token = {m.address: m for m in pipeline.messages(run_id, channel="push")}

    with TestClient(create_app(pipeline.context)) as client:
        for number, external_id in enumerate(shown):
            token = registered[external_id][0]
            message = by_token[token]
            body = {"nonce": f"nonce-shown-{number:010d}", "message_id": str(message.id), "token": token}
            raw, headers = signed(pipeline, body)
            answer = client.post(PUSH_SHOWN_PATH, content=raw, headers=headers)
            assert answer.json() == {"status": "delivered"}, answer.text
        # The same notification acknowledged again, and a message id that is not this token's: nothing moves.
        token = registered[shown[0]][0]
        again = {"nonce": "nonce-shown-again-001", "message_id": str(by_token[token].id), "token": token}
        assert client.post(
            PUSH_SHOWN_PATH, content=signed(pipeline, again)[0], headers=signed(pipeline, again)[1]
        ).json() == {"status": "already"}
        other = registered[people[5]["external_id"]][0]
        wrong = {"nonce": "nonce-shown-wrong-001", "message_id": str(by_token[token].id), "token": other}
        refused = client.post(
            PUSH_SHOWN_PATH, content=signed(pipeline, wrong)[0], headers=signed(pipeline, wrong)[1]
        )
        assert refused.status_code == 422
        assert refused.json()["field"] == "message_id"
        unsigned = client.post(
            PUSH_SHOWN_PATH, json={"nonce": "nonce-shown-unsigned1", "message_id": "1", "token": token}
        )
        assert unsigned.status_code == 401

    pipeline.advance(minutes=16)
    pipeline.tick()
    pipeline.drain()

    phones = {"+84" + p["phone"][1:] for p in people}
    confirmed = {"+84" + p["phone"][1:] for p in people[:4]}
    assert sms_destinations(pipeline) == Counter({phone: 1 for phone in phones - confirmed})
    statuses = Counter(m.status for m in pipeline.messages(run_id, channel="push"))
    assert statuses[MessageStatus.DELIVERED] == 4


@pytest.mark.parametrize(
    ("fallback", "field", "words"),
    [
        (
            {"from": "social", "to": "email", "after_minutes": 30},
            "fallback.to",
            "not one of the campaign's channels",
        ),
        ({"from": "social", "to": "social", "after_minutes": 30}, "fallback.to", "another channel"),
        ({"from": "social", "to": "sms", "after_minutes": 0}, "fallback.after_minutes", ""),
        ({"from": "sms", "to": "push", "after_minutes": 30}, "fallback.to", "cannot go by push"),
    ],
)
def test_a_fallback_the_campaign_cannot_keep_is_refused_naming_the_field(
    fallback_pipeline: Pipeline, fallback: dict[str, object], field: str, words: str
) -> None:
    channels = dict(FALLBACK_CHANNELS)
    if fallback["to"] == "push":
        write_push_templates(fallback_pipeline)
        channels["push"] = PUSH_CHANNELS["push"]
    path = fallback_pipeline.write_campaign(variables=VARIABLES, channels=channels, fallback=fallback)
    problems = load_problems(fallback_pipeline, path)
    problem = next(p for p in problems if p.field is not None and p.field.startswith("fallback"))
    assert problem.field == field, problems
    assert words in problem.message
